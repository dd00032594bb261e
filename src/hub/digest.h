// Hashes and encodings the Hub protocol needs: streaming SHA-256 (LFS oids), git blob SHA-1 (etags of
// regular files), HMAC-SHA256 (signed storage URLs), hex, base64 and a constant-time comparison.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "detrq/core/sha256.h"

namespace detrq::hub::detail {

using core::Sha256;      // streaming SHA-256 of LFS objects
using core::sha256_hex;
// SHA-256 of a file's bytes [0, limit) (whole file when limit is UINT64_MAX), feeding `hasher`.
void sha256_update_from_file(Sha256& hasher, const std::filesystem::path& path, uint64_t limit = UINT64_MAX);
std::string sha256_file_hex(const std::filesystem::path& path);
// git's object id of a blob: sha1("blob <size>\0" + content).
std::string git_blob_sha1_hex(std::string_view content);
std::string git_blob_sha1_file_hex(const std::filesystem::path& path);
std::string hmac_sha256_hex(std::string_view key, std::string_view message);

std::string base64_encode(std::string_view data);
// Returns false on malformed input.
bool base64_decode(std::string_view in, std::string& out);
bool is_hex_string(std::string_view s, std::size_t length);

// Compares without an early exit so timing does not reveal how much of a secret matched.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace detrq::hub::detail
