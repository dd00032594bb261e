// OpenSSL-backed hashes and the small encodings of the Hub protocol.
#include "hub/digest.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <vector>

#include "detrq/core/error.h"

namespace detrq::hub::detail {
namespace {

std::string to_hex(const unsigned char* p, std::size_t n) {
  static const char* const kDigits = "0123456789abcdef";
  std::string out(n * 2, '0');
  for (std::size_t i = 0; i < n; ++i) {
    out[2 * i] = kDigits[p[i] >> 4];
    out[2 * i + 1] = kDigits[p[i] & 15];
  }
  return out;
}

std::string digest_hex(const EVP_MD* md, std::string_view prefix, std::string_view data) {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestInit_ex(ctx, md, nullptr);
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  EVP_DigestUpdate(ctx, data.data(), data.size());
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return to_hex(out, n);
}

// Feeds [0, limit) of a file to `fn` in 1 MiB reads.
template <typename Fn>
void for_each_chunk(const std::filesystem::path& path, uint64_t limit, Fn&& fn) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_io(path.string(), std::string("cannot open: ") + std::strerror(errno));
  std::vector<char> buf(1 << 20);
  uint64_t left = limit;
  while (left > 0) {
    const std::size_t want = static_cast<std::size_t>(std::min<uint64_t>(left, buf.size()));
    const ssize_t n = ::read(fd, buf.data(), want);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string err = std::strerror(errno);
      ::close(fd);
      throw_io(path.string(), "read failed: " + err);
    }
    if (n == 0) break;
    fn(buf.data(), static_cast<std::size_t>(n));
    left -= static_cast<uint64_t>(n);
  }
  ::close(fd);
}

}  // namespace

void sha256_update_from_file(Sha256& hasher, const std::filesystem::path& path, uint64_t limit) {
  for_each_chunk(path, limit, [&](const char* p, std::size_t n) { hasher.update(p, n); });
}

std::string sha256_file_hex(const std::filesystem::path& path) {
  Sha256 h;
  sha256_update_from_file(h, path);
  return h.hex_digest();
}

std::string git_blob_sha1_hex(std::string_view content) {
  std::string prefix = "blob " + std::to_string(content.size());
  prefix.push_back('\0');
  return digest_hex(EVP_sha1(), prefix, content);
}

std::string git_blob_sha1_file_hex(const std::filesystem::path& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  if (ec) throw_io(path.string(), "cannot stat: " + ec.message());
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  EVP_DigestInit_ex(ctx, EVP_sha1(), nullptr);
  std::string prefix = "blob " + std::to_string(size);
  prefix.push_back('\0');
  EVP_DigestUpdate(ctx, prefix.data(), prefix.size());
  try {
    for_each_chunk(path, UINT64_MAX, [&](const char* p, std::size_t n) { EVP_DigestUpdate(ctx, p, n); });
  } catch (...) {
    EVP_MD_CTX_free(ctx);
    throw;
  }
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_DigestFinal_ex(ctx, out, &n);
  EVP_MD_CTX_free(ctx);
  return to_hex(out, n);
}

std::string hmac_sha256_hex(std::string_view key, std::string_view message) {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()), reinterpret_cast<const unsigned char*>(message.data()),
       message.size(), out, &n);
  return to_hex(out, n);
}

std::string base64_encode(std::string_view data) {
  static const char* const kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    const uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  if (i < data.size()) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (i + 1 < data.size()) v |= uint8_t(data[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

bool base64_decode(std::string_view in, std::string& out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out.clear();
  out.reserve(in.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0;
  std::size_t pad = 0;
  for (char c : in) {
    if (c == '=') {
      ++pad;
      continue;
    }
    if (pad > 0) return false;  // data after padding
    const int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return pad <= 2;
}

bool is_hex_string(std::string_view s, std::size_t length) {
  if (s.size() != length) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c)) && !(c >= 'a' && c <= 'f')) return false;
  return true;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Length differences are revealed (token lengths are not secret); contents are not.
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace detrq::hub::detail
