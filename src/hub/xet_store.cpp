// XetStore: verification before anything is kept. Every write goes to a temporary name first and is
// renamed into place, so a cut connection or a crash leaves no partial object; identical concurrent
// uploads rename the same bytes over each other, which is harmless.
#include "hub/xet_store.h"

#include <fcntl.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/core/sha256.h"

namespace detrq::hub::detail {
namespace {

using nlohmann::json;

std::string read_range(int fd, uint64_t offset, uint32_t length) {
  std::string out(length, '\0');
  std::size_t done = 0;
  while (done < length) {
    const ssize_t n = ::pread(fd, out.data() + done, length - done, static_cast<off_t>(offset + done));
    if (n <= 0) return {};
    done += static_cast<std::size_t>(n);
  }
  return out;
}

json file_to_json(const XetFile& f) {
  json terms = json::array();
  for (const XetTerm& t : f.terms) {
    terms.push_back({{"xorb", xet_hex(t.xorb)}, {"start", t.chunk_start}, {"end", t.chunk_end}, {"bytes", t.bytes}});
  }
  return {{"hash", xet_hex(f.hash)}, {"size", f.size}, {"sha256", f.sha256}, {"terms", terms}};
}

std::optional<XetFile> file_from_json(const json& j) {
  XetFile f;
  const auto h = xet_from_hex(j.at("hash").get<std::string>());
  if (!h) return std::nullopt;
  f.hash = *h;
  f.size = j.at("size").get<uint64_t>();
  f.sha256 = j.at("sha256").get<std::string>();
  for (const json& t : j.at("terms")) {
    const auto x = xet_from_hex(t.at("xorb").get<std::string>());
    if (!x) return std::nullopt;
    f.terms.push_back({*x, t.at("start").get<uint32_t>(), t.at("end").get<uint32_t>(), t.at("bytes").get<uint64_t>()});
  }
  return f;
}

}  // namespace

XetStore::XetStore(std::filesystem::path dir) : dir_(std::move(dir)) {
  for (const char* sub : {"xorbs", "files", "sha256"}) std::filesystem::create_directories(dir_ / sub);
}

std::filesystem::path XetStore::xorb_path(const XetHash& xorb) const { return dir_ / "xorbs" / xet_hex(xorb); }

XetOutcome XetStore::put_xorb(const XetHash& name, const std::filesystem::path& temp) const {
  std::string error;
  const auto parsed = parse_xorb(core::read_file(temp), error);
  if (!parsed) return {400, "malformed xorb: " + error + "; nothing was stored", false};
  if (parsed->hash != name) {
    return {400, "the xorb's chunks hash to " + xet_hex(parsed->hash) + ", not to its name " + xet_hex(name) +
                     "; nothing was stored", false};
  }
  const std::filesystem::path dest = xorb_path(name);
  std::error_code ec;
  if (std::filesystem::is_regular_file(dest, ec) && xorb_chunks(name)) return {200, "", false};
  json index = json::array();
  for (const XorbChunk& c : parsed->chunks) index.push_back({c.offset, c.stored_len, c.unpacked_len, xet_hex(c.hash)});
  // The index lands first: a xorb counts as stored only once both exist.
  core::write_file_atomic(dest.string() + ".idx", index.dump());
  if (::rename(temp.c_str(), dest.c_str()) != 0) throw_io(dest.string(), "cannot store the xorb");
  return {200, "", true};
}

std::optional<std::vector<XorbChunk>> XetStore::xorb_chunks(const XetHash& xorb) const {
  const std::filesystem::path p = xorb_path(xorb);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec) || !std::filesystem::is_regular_file(p.string() + ".idx", ec)) {
    return std::nullopt;
  }
  std::vector<XorbChunk> chunks;
  for (const json& c : json::parse(core::read_file(p.string() + ".idx"))) {
    const auto h = xet_from_hex(c.at(3).get<std::string>());
    if (!h) return std::nullopt;
    chunks.push_back({c.at(0).get<uint64_t>(), c.at(1).get<uint32_t>(), c.at(2).get<uint32_t>(), *h});
  }
  return chunks;
}

XetOutcome XetStore::verify_file(const ShardFile& f, XetFile& out) const {
  const std::string name = "file " + xet_hex(f.file_hash);
  std::vector<std::pair<XetHash, uint64_t>> chunks;
  out.hash = f.file_hash;
  for (const ShardTerm& t : f.terms) {
    const auto xorb = xorb_chunks(t.xorb);
    if (!xorb) return {400, name + " names xorb " + xet_hex(t.xorb) + ", which was not uploaded; nothing was stored"};
    if (t.chunk_start >= t.chunk_end || t.chunk_end > xorb->size()) {
      return {400, name + ": chunks [" + std::to_string(t.chunk_start) + ", " + std::to_string(t.chunk_end) +
                       ") lie outside xorb " + xet_hex(t.xorb)};
    }
    uint64_t bytes = 0;
    std::vector<XetHash> hashes;
    for (uint32_t i = t.chunk_start; i < t.chunk_end; ++i) {
      chunks.emplace_back((*xorb)[i].hash, (*xorb)[i].unpacked_len);
      hashes.push_back((*xorb)[i].hash);
      bytes += (*xorb)[i].unpacked_len;
    }
    if (bytes != t.unpacked_bytes) return {400, name + ": a term's byte count does not match its chunks"};
    if (t.range_hash && *t.range_hash != xet_range_hash(hashes)) {
      return {400, name + ": a term's verification hash does not match its chunks"};
    }
    out.terms.push_back({t.xorb, t.chunk_start, t.chunk_end, bytes});
    out.size += bytes;
  }
  if (xet_file_hash(chunks) != f.file_hash) return {400, name + ": its chunks hash to " + xet_hex(xet_file_hash(chunks))};
  core::Sha256 sha;
  if (!reassemble(out, [&](const std::string& b) { sha.update(b.data(), b.size()); })) {
    return {500, name + ": a stored xorb is unreadable"};
  }
  out.sha256 = sha.hex_digest();
  if (f.sha256 && *f.sha256 != out.sha256) return {400, name + ": its bytes do not have the sha256 the shard claims"};
  return {};
}

XetOutcome XetStore::put_shard(const std::string& bytes) const {
  std::string error;
  const auto files = parse_shard_files(bytes, error);
  if (!files) return {400, "malformed shard: " + error + "; nothing was stored"};
  std::vector<XetFile> verified(files->size());
  for (std::size_t i = 0; i < files->size(); ++i) {
    XetOutcome o = verify_file((*files)[i], verified[i]);
    if (o.status != 200) return o;
  }
  for (const XetFile& f : verified) {
    core::write_file_atomic(dir_ / "files" / (xet_hex(f.hash) + ".json"), file_to_json(f).dump());
    core::write_file_atomic(dir_ / "sha256" / f.sha256, xet_hex(f.hash));
  }
  return {200, "", true};
}

std::optional<XetFile> XetStore::file(const XetHash& hash) const {
  const std::filesystem::path p = dir_ / "files" / (xet_hex(hash) + ".json");
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
  return file_from_json(json::parse(core::read_file(p)));
}

std::optional<XetFile> XetStore::file_by_sha256(const std::string& sha256) const {
  if (sha256.size() != 64 || sha256.find_first_not_of("0123456789abcdef") != std::string::npos) return std::nullopt;
  const std::filesystem::path p = dir_ / "sha256" / sha256;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(p, ec)) return std::nullopt;
  const auto h = xet_from_hex(core::read_file(p));
  return h ? file(*h) : std::nullopt;
}

bool XetStore::reassemble(const XetFile& f, const std::function<void(const std::string&)>& sink) const {
  for (const XetTerm& t : f.terms) {
    const auto chunks = xorb_chunks(t.xorb);
    if (!chunks || t.chunk_end > chunks->size()) return false;
    const int fd = ::open(xorb_path(t.xorb).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    for (uint32_t i = t.chunk_start; i < t.chunk_end; ++i) {
      const auto data = decode_xorb_chunk(read_range(fd, (*chunks)[i].offset, (*chunks)[i].stored_len));
      if (!data) {
        ::close(fd);
        return false;
      }
      sink(*data);
    }
    ::close(fd);
  }
  return true;
}

}  // namespace detrq::hub::detail
