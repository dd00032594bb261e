// Per-thread scratch of the int8 kernels (see int8_scratch.h).
#include "runtime/kernels/int8_scratch.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>

namespace detrq::runtime::kernels {
namespace {

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
struct Buffer {
  std::unique_ptr<void, FreeDeleter> data;
  std::size_t bytes = 0;
};

}  // namespace

void* int8_scratch(Int8ScratchSlot slot, std::size_t bytes) {
  thread_local std::array<Buffer, static_cast<std::size_t>(Int8ScratchSlot::kCount)> buffers;
  Buffer& b = buffers[static_cast<std::size_t>(slot)];
  if (b.bytes < bytes || !b.data) {
    const std::size_t size = (std::max<std::size_t>(bytes, 64) + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, size);
    if (!p) throw std::bad_alloc();
    b.data.reset(p);
    b.bytes = size;
  }
  return b.data.get();
}

}  // namespace detrq::runtime::kernels
