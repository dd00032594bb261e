// Parsing of the Hub's JSON answers that HubClient acts on (model info, preupload, LFS batch, commit),
// apart from the HTTP exchanges, so that hostile answers can be fuzzed in-process. Anything malformed is
// kNetwork naming `repo_id` (the server is what is wrong); nothing else escapes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "detrq/hub/hub_client.h"

namespace detrq::hub::detail {

// GET /api/models/ID/revision/REV: id, commit id (checked to be one), private flag, the siblings.
RepoInfo parse_repo_info_answer(const std::string& body, const std::string& repo_id);

// POST /api/models/ID/preupload/REV: for each path the server listed, whether it goes through LFS.
std::map<std::string, bool> parse_preupload_answer(const std::string& body, const std::string& repo_id);

// One object of a POST ID.git/info/lfs/objects/batch answer.
struct LfsBatchObject {
  std::string oid;
  std::string error;   // the server refused the object: its message (non-empty)
  bool upload = false; // false: the server has it already
  std::string href;    // basic: where to PUT; multipart: where to POST the completion
  std::vector<std::pair<std::string, std::string>> headers;  // basic: the string headers to send with the PUT
  uint64_t chunk_size = 0;                                    // multipart when not 0
  std::map<uint64_t, std::string> part_urls;                  // multipart: part number (from 1) -> PUT URL
  std::string verify_href;                                    // empty: no verify action
};
std::vector<LfsBatchObject> parse_lfs_batch_answer(const std::string& body, const std::string& repo_id);

// POST /api/models/ID/commit/REV: the new commit id and URL.
CommitResult parse_commit_answer(const std::string& body, const std::string& repo_id);

}  // namespace detrq::hub::detail
