// The hub-server's tokens file: one "<token> read|write" per line, '#' starts a comment, blank lines skipped.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace detrq::hub::detail {

// Each token with whether it may write; a malformed line is kInvalidInput naming `source`:line.
std::vector<std::pair<std::string, bool>> parse_tokens(const std::string& text, const std::string& source);

}  // namespace detrq::hub::detail
