// Decoding of the LZ4 frame format (and Xet's byte-grouped variant), written from the LZ4 format
// documents: xorb chunks arrive compressed, and the server must see their bytes to verify their hashes.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace detrq::hub::detail {

// Decodes every LZ4 frame in `in`; nullopt when the input is malformed or would exceed `max_output`.
std::optional<std::string> lz4_frame_decode(std::string_view in, std::size_t max_output);
// Xet's "byte grouping 4": the four interleaved byte planes stored one after another, put back in place.
std::string bg4_ungroup(std::string_view grouped);

}  // namespace detrq::hub::detail
