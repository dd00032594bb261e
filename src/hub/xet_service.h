// The Xet side of hub-server: short-lived CAS tokens issued per repository (write or read), and the CAS
// routes hf_xet calls under <endpoint>/xet-cas/<type>s/<org>/<name>/: xorb and shard uploads, file
// reconstructions, and signed byte-range reads of stored xorbs.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "hub/http_server.h"
#include "hub/repo_store.h"
#include "hub/xet_store.h"

namespace detrq::hub::detail {

class XetService {
 public:
  XetService(RepoStore& store, std::string secret) : store_(store), secret_(std::move(secret)) {}

  // Answers the xet-write-token / xet-read-token route; the caller has checked the Hub token's rights.
  void issue_token(HttpExchange& ex, const RepoKey& key, bool write, const std::string& base_url);
  // Serves one CAS request; `rest` is the path after /xet-cas/<type>s/<org>/<name>.
  void handle_cas(HttpExchange& ex, const RepoKey& key, const std::vector<std::string>& rest, const std::string& base_url);

  XetStore store_for(const RepoKey& key) const { return XetStore(store_.repo_path(key) / "xet"); }
  static std::string cas_url(const std::string& base_url, const RepoKey& key);

 private:
  struct Grant {
    RepoKey key;
    bool write = false;
    int64_t expires = 0;
  };
  enum class Need { kRead, kWrite };

  bool authorize(HttpExchange& ex, const RepoKey& key, Need need);
  void upload_xorb(HttpExchange& ex, const RepoKey& key, const std::string& hash);
  void upload_shard(HttpExchange& ex, const RepoKey& key);
  void reconstruction(HttpExchange& ex, const RepoKey& key, const std::string& hash, const std::string& base_url);
  void xorb_data(HttpExchange& ex, const RepoKey& key, const std::string& hash);
  std::string xorb_data_url(const std::string& base_url, const RepoKey& key, const std::string& hash) const;

  RepoStore& store_;
  std::string secret_;
  std::mutex mutex_;
  std::map<std::string, Grant> grants_;
};

}  // namespace detrq::hub::detail
