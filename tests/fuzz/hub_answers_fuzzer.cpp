// libFuzzer target for the Hub client's parsing of API answers (hub_answers.h): the input is one answer body,
// read as each of model info (with its siblings listing), preupload, LFS batch and commit answer. Each parses
// or throws detrq::Error (kNetwork); a crash, sanitizer report or other exception is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "detrq/core/error.h"
#include "hub/hub_answers.h"

namespace {

template <typename F>
void expect_network_error_or_answer(F&& parse) {
  try {
    parse();
  } catch (const detrq::Error& e) {
    if (e.kind() != detrq::ErrorKind::kNetwork) std::abort();  // a bad answer is the server's fault: exit 5
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  namespace d = detrq::hub::detail;
  const std::string body(reinterpret_cast<const char*>(data), size);
  expect_network_error_or_answer([&] {
    const detrq::hub::RepoInfo info = d::parse_repo_info_answer(body, "org/model");
    if (info.sha.size() != 40) std::abort();
  });
  expect_network_error_or_answer([&] { (void)d::parse_preupload_answer(body, "org/model"); });
  expect_network_error_or_answer([&] {
    for (const d::LfsBatchObject& o : d::parse_lfs_batch_answer(body, "org/model")) {
      if (o.upload && o.href.empty()) std::abort();
    }
  });
  expect_network_error_or_answer([&] { (void)d::parse_commit_answer(body, "org/model"); });
  return 0;
}
