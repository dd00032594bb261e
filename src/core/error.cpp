// Formatting of detrq::Error messages: "<where>: <what> (<hint>)".
#include "detrq/core/error.h"

namespace detrq {
namespace {
std::string format_message(const std::string& where, const std::string& what, const std::string& hint) {
  std::string message;
  if (!where.empty()) message = where + ": ";
  message += what;
  if (!hint.empty()) message += " (" + hint + ")";
  return message;
}
}  // namespace

Error::Error(ErrorKind kind, std::string where, std::string what, std::string hint)
    : std::runtime_error(format_message(where, what, hint)),
      kind_(kind),
      where_(std::move(where)),
      problem_(std::move(what)),
      hint_(std::move(hint)) {}

void throw_invalid(const std::string& where, const std::string& what, const std::string& hint) {
  throw Error(ErrorKind::kInvalidInput, where, what, hint);
}
void throw_unsupported(const std::string& where, const std::string& what, const std::string& hint) {
  throw Error(ErrorKind::kUnsupported, where, what, hint);
}
void throw_io(const std::string& where, const std::string& what, const std::string& hint) {
  throw Error(ErrorKind::kIo, where, what, hint);
}

}  // namespace detrq
