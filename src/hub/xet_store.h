// A repository's Xet content: xorbs (verified against their names on arrival), the file reconstructions
// uploaded shards describe (verified against the xorbs, the file hash and the sha256), and reassembly of
// a file's bytes for clients that download over plain HTTP.
//   <repo>/xet/{xorbs/<hash>, xorbs/<hash>.idx, files/<hash>.json, sha256/<sha256>}
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "hub/xet_format.h"

namespace detrq::hub::detail {

struct XetTerm {
  XetHash xorb{};
  uint32_t chunk_start = 0, chunk_end = 0;
  uint64_t bytes = 0;
};

struct XetFile {
  XetHash hash{};
  uint64_t size = 0;
  std::string sha256;
  std::vector<XetTerm> terms;
};

struct XetOutcome {
  int status = 200;  // or the HTTP status of the refusal
  std::string message;
  bool inserted = false;
};

class XetStore {
 public:
  // `dir` is the repository's xet folder (made if missing).
  explicit XetStore(std::filesystem::path dir);

  // Verifies the uploaded bytes (already in `temp`) hash to `name`, then moves them in place.
  XetOutcome put_xorb(const XetHash& name, const std::filesystem::path& temp) const;
  // Verifies every file the shard describes, then records them; nothing is recorded when one fails.
  XetOutcome put_shard(const std::string& bytes) const;

  std::optional<std::vector<XorbChunk>> xorb_chunks(const XetHash& xorb) const;
  std::filesystem::path xorb_path(const XetHash& xorb) const;
  std::optional<XetFile> file(const XetHash& hash) const;
  std::optional<XetFile> file_by_sha256(const std::string& sha256) const;

  // Streams the file's bytes to `sink`; false (after a partial stream) when a stored xorb is unreadable.
  bool reassemble(const XetFile& f, const std::function<void(const std::string&)>& sink) const;

 private:
  XetOutcome verify_file(const ShardFile& f, XetFile& out) const;
  std::filesystem::path dir_;
};

}  // namespace detrq::hub::detail
