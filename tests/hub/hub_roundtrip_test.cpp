// In-process HubServer and HubClient: publish and download through the library calls the pipeline uses,
// and commits from many threads at once that all land.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <thread>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"
#include "detrq/hub/hub_client.h"
#include "detrq/hub/hub_server.h"
#include "hub/digest.h"

namespace detrq::hub {
namespace {

struct Fixture {
  std::filesystem::path dir;
  std::unique_ptr<HubServer> server;
  explicit Fixture(const std::string& name) {
    dir = std::filesystem::temp_directory_path() / ("detrq_hub_rt_" + name + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    core::write_file_atomic(dir / "tokens", "w-token write\nr-token read\n");
    HubServerOptions o;
    o.root = dir / "root";
    o.port = 0;
    o.tokens_file = dir / "tokens";
    server = std::make_unique<HubServer>(o);
    server->start();
  }
  ~Fixture() {
    server->stop();
    std::filesystem::remove_all(dir);
  }
  HubConfig config(const std::string& token, const std::string& cache) const {
    HubConfig c;
    c.endpoint = server->endpoint();
    c.token = token;
    c.cache_dir = dir / cache;
    return c;
  }
};

TEST(HubRoundTrip, PublishThenDownload) {
  Fixture f("pd");
  std::string big(300000, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>((i * 2654435761u) >> 13);
  core::write_file_atomic(f.dir / "model.onnx", big);
  core::write_file_atomic(f.dir / "notes.txt", "calibrated with entropy\n");
  HubClient writer(f.config("w-token", "wcache"));
  EXPECT_TRUE(writer.create_repo("acme/m"));
  EXPECT_FALSE(writer.create_repo("acme/m"));  // exists: fine
  const CommitResult c = writer.upload_files(
      "acme/m", {{f.dir / "model.onnx", "onnx/model.onnx"}, {f.dir / "notes.txt", "notes.txt"}}, "upload");
  ASSERT_EQ(c.commit.size(), 40u);

  HubClient reader(f.config("", "rcache"));
  const auto info = reader.repo_info("acme/m");
  EXPECT_EQ(info.sha, c.commit);
  EXPECT_EQ(info.files.size(), 3u);  // .gitattributes, notes.txt, onnx/model.onnx
  const auto path = reader.download_file("acme/m", "onnx/model.onnx");
  EXPECT_EQ(core::read_file(path), big);
  EXPECT_EQ(path, f.dir / "rcache" / "models--acme--m" / "snapshots" / c.commit / "onnx" / "model.onnx");
  const auto local = reader.download_file("acme/m", "notes.txt", "main", f.dir / "local");
  EXPECT_EQ(local, f.dir / "local" / "notes.txt");
  EXPECT_EQ(core::read_file(local), "calibrated with entropy\n");
  EXPECT_THROW(reader.download_file("acme/m", "../../escape"), Error);
}

TEST(HubRoundTrip, ConcurrentCommitsAreSerializedAndNoneIsLost) {
  Fixture f("cc");
  HubClient admin(f.config("w-token", "c"));
  admin.create_repo("acme/busy");
  constexpr int kThreads = 16;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      const auto file = f.dir / ("f" + std::to_string(i) + ".txt");
      core::write_file_atomic(file, "file " + std::to_string(i));
      HubClient client(f.config("w-token", "c" + std::to_string(i)));
      client.upload_files("acme/busy", {{file, "files/" + std::to_string(i) + ".txt"}}, "commit " + std::to_string(i));
      ++ok;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  const auto info = HubClient(f.config("", "r")).repo_info("acme/busy");
  EXPECT_EQ(info.files.size(), static_cast<std::size_t>(kThreads) + 1);
}

TEST(HubRoundTrip, WritesNeedAWriteToken) {
  Fixture f("auth");
  core::write_file_atomic(f.dir / "a.txt", "a");
  try {
    HubClient(f.config("r-token", "c")).create_repo("acme/x");
    FAIL() << "a read token created a repository";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNetwork);
    EXPECT_NE(std::string(e.what()).find("403"), std::string::npos);
    EXPECT_EQ(std::string(e.what()).find("r-token"), std::string::npos);
  }
  EXPECT_THROW(HubClient(f.config("", "c")).create_repo("acme/x"), Error);
}

}  // namespace
}  // namespace detrq::hub
