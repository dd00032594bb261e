// Parsing of the NAME=1x3x512x512 input-shape option shared by `inspect` and `run`.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "detrq/core/error.h"
#include "detrq/core/tensor.h"

namespace detrq::cli {

inline std::map<std::string, core::Shape> parse_input_shapes(const std::vector<std::string>& specs) {
  std::map<std::string, core::Shape> out;
  for (const auto& spec : specs) {
    const auto eq = spec.find('=');
    if (eq == std::string::npos || eq == 0) {
      throw Error(ErrorKind::kUsage, "--input-shape " + spec, "expected NAME=D1xD2x...", "e.g. input=1x3x512x512");
    }
    core::Shape shape;
    std::size_t pos = eq + 1;
    while (pos <= spec.size()) {
      const auto x = std::min(spec.find('x', pos), spec.size());
      const std::string d = spec.substr(pos, x - pos);
      if (d.empty() || d.size() > 12 || d.find_first_not_of("0123456789") != std::string::npos) {
        throw Error(ErrorKind::kUsage, "--input-shape " + spec, "dimension '" + d + "' is not a number",
                    "e.g. input=1x3x512x512");
      }
      shape.push_back(std::stoll(d));
      pos = x + 1;
    }
    out[spec.substr(0, eq)] = shape;
  }
  return out;
}

}  // namespace detrq::cli
