// Xet's content-defined chunking: a gear rolling hash over the bytes, cutting where its top 16 bits are
// zero (a 64 KiB target), with chunks held between 8 KiB and 128 KiB, as hf_xet cuts files. detrq uses it
// to compute a file's Xet hash exactly as the client does (the server itself trusts no chunking: it
// verifies the chunks it is given).
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

#include "hub/xet_hash.h"

namespace detrq::hub::detail {

// Lengths of the consecutive chunks `data` is cut into (none for empty input).
std::vector<std::size_t> xet_chunk_lengths(std::string_view data);
// The file's Xet hash: chunked, each chunk hashed, merkle root, keyed once more.
XetHash xet_file_hash_of(std::string_view data);

}  // namespace detrq::hub::detail
