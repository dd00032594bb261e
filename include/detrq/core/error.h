// Errors: every failure detrq reports is a detrq::Error carrying a kind (which maps to an exit code),
// the file or object it concerns, what is wrong and what to do about it.
#pragma once

#include <stdexcept>
#include <string>

namespace detrq {

// Each kind is one class of failure with its own process exit code (documented in the README).
enum class ErrorKind : int {
  kFailure = 1,       // the command ran but did not achieve what was asked (e.g. fewer tensors than --count)
  kUsage = 2,         // bad command line
  kInvalidInput = 3,  // a file or value the user gave is malformed (corrupt model, bad image, wrong shape)
  kUnsupported = 4,   // valid input detrq cannot handle (unknown operator, missing CPU feature)
  kNetwork = 5,       // HTTP and Hub failures
  kIo = 6,            // the file system refused (permissions, disk full, missing file)
  kInternal = 70,     // a bug in detrq
};

class Error : public std::runtime_error {
 public:
  // `where` is usually a file path or an object name (tensor, node); `hint` says what to do next.
  Error(ErrorKind kind, std::string where, std::string what, std::string hint = {});

  ErrorKind kind() const noexcept { return kind_; }
  const std::string& where() const noexcept { return where_; }
  const std::string& problem() const noexcept { return problem_; }
  const std::string& hint() const noexcept { return hint_; }
  int exit_code() const noexcept { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
  std::string where_;
  std::string problem_;
  std::string hint_;
};

// Shorthands for the common kinds.
[[noreturn]] void throw_invalid(const std::string& where, const std::string& what, const std::string& hint = {});
[[noreturn]] void throw_unsupported(const std::string& where, const std::string& what, const std::string& hint = {});
[[noreturn]] void throw_io(const std::string& where, const std::string& what, const std::string& hint = {});

// Checks an internal invariant; failing it is a bug in detrq, not in the user's input.
#define DETRQ_ASSERT(cond, msg)                                                                  \
  do {                                                                                           \
    if (!(cond)) throw ::detrq::Error(::detrq::ErrorKind::kInternal, __FILE__, (msg), "a bug"); \
  } while (0)

}  // namespace detrq
