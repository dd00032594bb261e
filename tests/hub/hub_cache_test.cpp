// Unit tests of the cache layout, name and path validation, environment parsing and digests.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/hub/hub_cache.h"
#include "detrq/hub/hub_config.h"
#include "detrq/hub/http_client.h"
#include "hub/digest.h"

namespace detrq::hub {
namespace {

std::filesystem::path temp_dir(const std::string& name) {
  auto d = std::filesystem::temp_directory_path() / ("detrq_hub_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

TEST(HubCache, FolderNamesFollowHuggingfaceHub) {
  EXPECT_EQ(repo_folder_name("acme/rf-detr"), "models--acme--rf-detr");
  EXPECT_EQ(repo_folder_name("gpt2"), "models--gpt2");
  EXPECT_EQ(repo_folder_name("acme/coco", "dataset"), "datasets--acme--coco");
}

TEST(HubCache, RepoIdsAreValidated) {
  EXPECT_TRUE(is_valid_repo_id("acme/rf-detr_v1.2"));
  EXPECT_FALSE(is_valid_repo_id("../etc"));
  EXPECT_FALSE(is_valid_repo_id("acme/.."));
  EXPECT_FALSE(is_valid_repo_id("a/b/c"));
  EXPECT_FALSE(is_valid_repo_id("/abs"));
  EXPECT_FALSE(is_valid_repo_id("acme/x y"));
  EXPECT_FALSE(is_valid_repo_id(""));
}

TEST(HubCache, RepoPathsCannotEscape) {
  EXPECT_TRUE(is_safe_repo_path("onnx/model.onnx"));
  for (const char* bad : {"", "/etc/passwd", "../x", "a/../../b", "a//b", "./a", "a/.", "a\\..\\b", "a\nb"}) {
    EXPECT_FALSE(is_safe_repo_path(bad)) << bad;
  }
  HubCache cache("/tmp/c", "acme/m");
  const std::string commit(40, 'a');
  EXPECT_THROW(cache.snapshot_path(commit, "../../../etc/passwd"), Error);
  EXPECT_THROW(cache.snapshot_path("not-a-commit", "x"), Error);
  EXPECT_THROW(cache.blob_path("../x"), Error);
  EXPECT_EQ(cache.snapshot_path(commit, "a/b"), std::filesystem::path("/tmp/c/models--acme--m/snapshots") / commit / "a/b");
}

TEST(HubCache, SnapshotLinksPointAtBlobsAndRefsResolve) {
  const auto dir = temp_dir("cache");
  HubCache cache(dir, "acme/m");
  const std::string commit = "0123456789abcdef0123456789abcdef01234567";
  core::write_file_atomic(cache.blob_path("e1"), "bytes");
  cache.link_snapshot(commit, "sub/file.bin", "e1");
  const auto link = cache.snapshot_path(commit, "sub/file.bin");
  ASSERT_TRUE(std::filesystem::is_symlink(link));
  EXPECT_EQ(std::filesystem::read_symlink(link), std::filesystem::path("../../../blobs/e1"));
  EXPECT_EQ(core::read_file(link), "bytes");
  cache.link_snapshot(commit, "sub/file.bin", "e1");  // relinking is fine
  EXPECT_FALSE(cache.resolve_offline("main"));
  cache.write_ref("main", commit);
  EXPECT_EQ(core::read_file(dir / "models--acme--m" / "refs" / "main"), commit);  // no newline, like huggingface_hub
  EXPECT_EQ(cache.resolve_offline("main").value(), commit);
  EXPECT_EQ(cache.resolve_offline(commit).value(), commit);
  std::filesystem::remove_all(dir);
}

TEST(HubConfig, ReadsTheHuggingfaceHubEnvironment) {
  const auto dir = temp_dir("env");
  core::write_file_atomic(dir / "token", "  hf_from_file \n");
  ::setenv("HF_HOME", dir.c_str(), 1);
  ::unsetenv("HF_HUB_CACHE");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  ::unsetenv("HF_TOKEN");
  ::unsetenv("HUGGING_FACE_HUB_TOKEN");
  ::unsetenv("HF_TOKEN_PATH");
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:9/", 1);
  ::setenv("HF_HUB_OFFLINE", "yes", 1);
  HubConfig c = HubConfig::from_environment();
  EXPECT_EQ(c.endpoint, "http://127.0.0.1:9");
  EXPECT_EQ(c.cache_dir, dir / "hub");
  EXPECT_EQ(c.token, "hf_from_file");
  EXPECT_TRUE(c.offline);
  ::setenv("HF_TOKEN", "hf_env", 1);
  ::setenv("HF_HUB_CACHE", (dir / "elsewhere").c_str(), 1);
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  c = HubConfig::from_environment();
  EXPECT_EQ(c.token, "hf_env");
  EXPECT_EQ(c.cache_dir, dir / "elsewhere");
  EXPECT_FALSE(c.offline);
  for (const char* v : {"HF_HOME", "HF_TOKEN", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE"}) ::unsetenv(v);
  std::filesystem::remove_all(dir);
}

TEST(Digest, KnownVectors) {
  // FIPS 180-2 "abc" and git's id of the empty blob.
  EXPECT_EQ(detail::sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(detail::git_blob_sha1_hex(""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
  std::string out;
  for (const std::string& s : std::vector<std::string>{"", "f", "fo", "foo", std::string("\0\xff\x10", 3)}) {
    ASSERT_TRUE(detail::base64_decode(detail::base64_encode(s), out));
    EXPECT_EQ(out, s);
  }
  EXPECT_EQ(detail::base64_encode("foob"), "Zm9vYg==");
  EXPECT_FALSE(detail::base64_decode("Zm9v!", out));
  EXPECT_TRUE(detail::constant_time_equal("token", "token"));
  EXPECT_FALSE(detail::constant_time_equal("token", "tokem"));
  EXPECT_FALSE(detail::constant_time_equal("token", "token2"));
}

TEST(HttpUrls, OriginsAndRedirectTargets) {
  EXPECT_EQ(url_origin("http://127.0.0.1:8080/a?b"), "http://127.0.0.1:8080");
  EXPECT_EQ(url_origin("https://HuggingFace.co/x"), "https://huggingface.co:443");
  EXPECT_NE(url_origin("http://127.0.0.1:8080/a"), url_origin("http://localhost:8080/a"));
  EXPECT_EQ(resolve_url("http://h:1/a/b?q", "/c"), "http://h:1/c");
  EXPECT_EQ(resolve_url("http://h:1/a/b", "c"), "http://h:1/a/c");
  EXPECT_EQ(resolve_url("http://h:1/a", "http://o:2/z"), "http://o:2/z");
  EXPECT_EQ(url_encode_path("a b/c%"), "a%20b/c%25");
}

}  // namespace
}  // namespace detrq::hub
