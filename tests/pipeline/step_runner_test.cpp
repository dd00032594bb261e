// The step framework: records, resume after an interruption, staleness by content, skips, dry run.
#include "detrq/pipeline/step_runner.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "detrq/core/error.h"
#include "detrq/core/file_io.h"

namespace detrq::pipeline {
namespace {

namespace fs = std::filesystem;

class StepRunnerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("detrq_steps_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    core::write_file_atomic(dir_ / "source.txt", "hello");
  }
  void TearDown() override { fs::remove_all(dir_); }

  // source.txt -> upper.txt -> final.txt, counting how often each step runs.
  std::vector<Step> chain() {
    Step upper;
    upper.name = "upper";
    upper.description = "upper-case the source";
    upper.inputs = {dir_ / "source.txt"};
    upper.parameters = {{"mode", mode_}};
    upper.outputs = {dir_ / "upper.txt"};
    upper.command = "tr a-z A-Z";
    upper.run = [this] {
      ++runs_upper_;
      std::string s = core::read_file(dir_ / "source.txt");
      for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      core::write_file_atomic(dir_ / "upper.txt", s + mode_);
    };
    Step final_step;
    final_step.name = "final";
    final_step.description = "frame it";
    final_step.inputs = {dir_ / "upper.txt"};
    final_step.outputs = {dir_ / "final.txt"};
    final_step.run = [this] {
      ++runs_final_;
      if (fail_final_) throw Error(ErrorKind::kFailure, "final", "interrupted");
      core::write_file_atomic(dir_ / "final.txt", "[" + core::read_file(dir_ / "upper.txt") + "]");
    };
    return {upper, final_step};
  }

  fs::path dir_;
  std::string mode_ = "!";
  int runs_upper_ = 0;
  int runs_final_ = 0;
  bool fail_final_ = false;
};

TEST_F(StepRunnerTest, SecondRunDoesNothing) {
  StepRunner runner(dir_ / "state" / "state.json");
  auto first = runner.run(chain());
  EXPECT_EQ(first[0].outcome, StepOutcome::kRan);
  EXPECT_EQ(first[1].outcome, StepOutcome::kRan);
  EXPECT_EQ(core::read_file(dir_ / "final.txt"), "[HELLO!]");
  auto second = runner.run(chain());
  EXPECT_EQ(second[0].outcome, StepOutcome::kUpToDate);
  EXPECT_EQ(second[1].outcome, StepOutcome::kUpToDate);
  EXPECT_EQ(runs_upper_, 1);
  EXPECT_EQ(runs_final_, 1);
}

TEST_F(StepRunnerTest, InterruptedRunResumesAtTheFailedStep) {
  StepRunner runner(dir_ / "state.json");
  fail_final_ = true;
  EXPECT_THROW(runner.run(chain()), Error);
  EXPECT_FALSE(fs::exists(dir_ / "final.txt"));
  fail_final_ = false;
  auto resumed = runner.run(chain());
  EXPECT_EQ(resumed[0].outcome, StepOutcome::kUpToDate);
  EXPECT_EQ(resumed[1].outcome, StepOutcome::kRan);
  EXPECT_EQ(runs_upper_, 1);
  EXPECT_EQ(core::read_file(dir_ / "final.txt"), "[HELLO!]");
}

TEST_F(StepRunnerTest, ChangedInputRerunsItsStepAndWhatDependsOnIt) {
  StepRunner runner(dir_ / "state.json");
  runner.run(chain());
  core::write_file_atomic(dir_ / "source.txt", "world");
  auto r = runner.run(chain());
  EXPECT_EQ(r[0].outcome, StepOutcome::kRan);
  EXPECT_EQ(r[0].reason, "input changed: " + (dir_ / "source.txt").string());
  EXPECT_EQ(r[1].outcome, StepOutcome::kRan);
  EXPECT_EQ(core::read_file(dir_ / "final.txt"), "[WORLD!]");
}

TEST_F(StepRunnerTest, SameBytesRewrittenDoNotPropagate) {
  StepRunner runner(dir_ / "state.json");
  runner.run(chain());
  core::write_file_atomic(dir_ / "upper.txt", "HELLO!");  // new mtime, same content
  auto r = runner.run(chain());
  EXPECT_EQ(r[0].outcome, StepOutcome::kUpToDate);
  EXPECT_EQ(r[1].outcome, StepOutcome::kUpToDate);
}

TEST_F(StepRunnerTest, ChangedParameterOrMissingOrEditedOutputReruns) {
  StepRunner runner(dir_ / "state.json");
  runner.run(chain());
  mode_ = "?";
  auto r = runner.run(chain());
  EXPECT_EQ(r[0].reason, "parameters changed");
  EXPECT_EQ(core::read_file(dir_ / "final.txt"), "[HELLO?]");
  fs::remove(dir_ / "final.txt");
  r = runner.run(chain());
  EXPECT_EQ(r[0].outcome, StepOutcome::kUpToDate);
  EXPECT_EQ(r[1].reason, "output missing: " + (dir_ / "final.txt").string());
  core::write_file_atomic(dir_ / "final.txt", "tampered");
  r = runner.run(chain());
  EXPECT_EQ(r[1].outcome, StepOutcome::kRan);
  EXPECT_EQ(core::read_file(dir_ / "final.txt"), "[HELLO?]");
}

TEST_F(StepRunnerTest, DryRunTouchesNothingAndSaysWhy) {
  StepRunner runner(dir_ / "state.json");
  auto steps = chain();
  auto r = runner.run(steps, {.dry_run = true});
  EXPECT_EQ(r[0].outcome, StepOutcome::kWouldRun);
  EXPECT_EQ(r[1].outcome, StepOutcome::kWouldRun);
  EXPECT_EQ(runs_upper_ + runs_final_, 0);
  EXPECT_FALSE(fs::exists(dir_ / "state.json"));
  EXPECT_FALSE(fs::exists(dir_ / "upper.txt"));
  const std::string text = StepRunner::describe(steps, r);
  EXPECT_NE(text.find("1. upper [would run: no record of a completed run]"), std::string::npos) << text;
  EXPECT_NE(text.find("input:     " + (dir_ / "source.txt").string()), std::string::npos);
  EXPECT_NE(text.find("output:    " + (dir_ / "final.txt").string()), std::string::npos);
  EXPECT_NE(text.find("parameter: mode = !"), std::string::npos);
  EXPECT_NE(text.find("command:   tr a-z A-Z"), std::string::npos);
  runner.run(steps);
  r = runner.run(chain(), {.dry_run = true});
  EXPECT_EQ(r[0].outcome, StepOutcome::kUpToDate);
}

TEST_F(StepRunnerTest, SkippedStepNeedsItsOutputsUnlessOptional) {
  StepRunner runner(dir_ / "state.json");
  auto steps = chain();
  steps[0].skip = true;
  steps[0].skip_reason = "--skip-upper";
  try {
    runner.run(steps);
    FAIL() << "expected a usage error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_EQ(e.where(), (dir_ / "upper.txt").string());
    EXPECT_NE(std::string(e.what()).find("--skip-upper"), std::string::npos);
  }
  core::write_file_atomic(dir_ / "upper.txt", "GIVEN");
  auto r = runner.run(steps);
  EXPECT_EQ(r[0].outcome, StepOutcome::kSkipped);
  EXPECT_EQ(runs_upper_, 0);
  EXPECT_EQ(core::read_file(dir_ / "final.txt"), "[GIVEN]");
  steps[1].skip = true;
  steps[1].skipped_outputs_required = false;
  fs::remove(dir_ / "final.txt");
  r = runner.run(steps);
  EXPECT_EQ(r[1].outcome, StepOutcome::kSkipped);
}

TEST_F(StepRunnerTest, AlwaysRunStepRunsEveryTimeAndDependentsStayFresh) {
  StepRunner runner(dir_ / "state.json");
  auto steps = chain();
  steps[0].always_run = true;
  runner.run(steps);
  auto r = runner.run(steps);
  EXPECT_EQ(r[0].outcome, StepOutcome::kRan);
  EXPECT_EQ(r[0].reason, "always runs");
  EXPECT_EQ(r[1].outcome, StepOutcome::kUpToDate);  // same bytes again
  EXPECT_EQ(runs_upper_, 2);
}

TEST_F(StepRunnerTest, CorruptStateFileOnlyCostsARerun) {
  StepRunner runner(dir_ / "state.json");
  runner.run(chain());
  core::write_file_atomic(dir_ / "state.json", "{ not json");
  auto r = runner.run(chain());
  EXPECT_EQ(r[0].outcome, StepOutcome::kRan);
  EXPECT_EQ(runner.run(chain())[0].outcome, StepOutcome::kUpToDate);
}

TEST(ContentHash, KnownDigestsAndFolders) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const auto dir = fs::temp_directory_path() / ("detrq_hash_" + std::to_string(::getpid()));
  fs::create_directories(dir / "sub");
  core::write_file_atomic(dir / "a", "abc");
  core::write_file_atomic(dir / "sub" / "b", "x");
  ContentHasher h;
  EXPECT_EQ(h.hash(dir / "a"), sha256_hex("abc"));
  const std::string before = h.hash(dir);
  core::write_file_atomic(dir / "sub" / "b", "y");
  EXPECT_NE(h.hash(dir), before);
  EXPECT_THROW(h.hash(dir / "missing"), Error);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace detrq::pipeline
