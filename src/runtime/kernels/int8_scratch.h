// Scratch memory of the int8 kernels (internal to runtime): one set of buffers per calling thread, shared
// by every QMatMulF and QConvF node instead of each node holding its own (the nodes of a plan run one at a
// time), so that an INT8 plan's memory does not grow with its node count.
#pragma once

#include <cstddef>

namespace detrq::runtime::kernels {

// Buffers a kernel may use at once within one run() call.
enum class Int8ScratchSlot { kGemm, kColumns, kChannelsLast, kProduct, kCount };

// A 64-byte aligned buffer of at least `bytes` bytes for `slot`, valid until the calling thread asks
// for that slot again; its contents are not kept.
void* int8_scratch(Int8ScratchSlot slot, std::size_t bytes);

}  // namespace detrq::runtime::kernels
