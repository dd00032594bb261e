// Model-card front matter: the YAML subset model cards use, read into JSON, and the Hub's tags from it.
#include "hub/card_data.h"

#include <cctype>
#include <cstdlib>
#include <set>
#include <stdexcept>
#include <vector>

namespace detrq::hub::detail {
namespace {

using nlohmann::json;

struct Line {
  int indent = 0;
  std::string text;  // without indentation, comment and trailing blanks
};

struct Unreadable : std::runtime_error {
  using std::runtime_error::runtime_error;
};

std::string rstrip(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string strip(const std::string& s) {
  std::size_t a = 0;
  while (a < s.size() && std::isspace(static_cast<unsigned char>(s[a]))) ++a;
  return rstrip(s.substr(a));
}

// Cuts a comment: '#' at the start or after a blank, outside quotes.
std::string without_comment(const std::string& s) {
  char quote = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      if (i == 0 || std::isspace(static_cast<unsigned char>(s[i - 1])) || s[i - 1] == '[' || s[i - 1] == '{' ||
          s[i - 1] == ',' || s[i - 1] == ':') {
        quote = c;
      }
    } else if (c == '#' && (i == 0 || std::isspace(static_cast<unsigned char>(s[i - 1])))) {
      return s.substr(0, i);
    }
  }
  return s;
}

// Where a "key: value" line's colon is (outside quotes and brackets), or npos.
std::size_t key_colon(const std::string& s) {
  char quote = 0;
  int depth = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quote) {
      if (c == quote) quote = 0;
      continue;
    }
    if ((c == '\'' || c == '"') && i == 0) {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ':' && depth == 0 && (i + 1 == s.size() || s[i + 1] == ' ')) {
      return i;
    }
  }
  return std::string::npos;
}

std::string unquote(const std::string& s) {
  if (s.size() >= 2 && s.front() == '\'' && s.back() == '\'') {
    std::string out;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
      out += s[i];
      if (s[i] == '\'' && s[i + 1] == '\'') ++i;
    }
    return out;
  }
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    std::string out;
    for (std::size_t i = 1; i + 1 < s.size(); ++i) {
      if (s[i] != '\\' || i + 2 >= s.size()) {
        out += s[i];
        continue;
      }
      const char e = s[++i];
      out += e == 'n' ? '\n' : e == 't' ? '\t' : e;
    }
    return out;
  }
  return s;
}

json scalar(const std::string& raw);

// The top-level comma-separated parts of a flow collection's inside.
std::vector<std::string> flow_items(const std::string& inside) {
  std::vector<std::string> out;
  std::string cur;
  char quote = 0;
  int depth = 0;
  for (char c : inside) {
    if (quote) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '[' || c == '{') {
      ++depth;
    } else if (c == ']' || c == '}') {
      --depth;
    } else if (c == ',' && depth == 0) {
      out.push_back(strip(cur));
      cur.clear();
      continue;
    }
    cur += c;
  }
  if (quote || depth != 0) throw Unreadable("unbalanced flow collection");
  if (!strip(cur).empty()) out.push_back(strip(cur));
  return out;
}

json scalar(const std::string& raw) {
  const std::string s = strip(raw);
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  const char first = s.front();
  if (first == '&' || first == '*' || first == '!' || first == '|' || first == '>' || first == '%' || first == '@' ||
      first == '`') {
    throw Unreadable("unsupported YAML: " + s);
  }
  if (first == '[') {
    if (s.back() != ']') throw Unreadable("unterminated flow sequence");
    json arr = json::array();
    for (const auto& item : flow_items(s.substr(1, s.size() - 2))) arr.push_back(scalar(item));
    return arr;
  }
  if (first == '{') {
    if (s.back() != '}') throw Unreadable("unterminated flow mapping");
    json obj = json::object();
    for (const auto& item : flow_items(s.substr(1, s.size() - 2))) {
      const std::size_t colon = key_colon(item);
      if (colon == std::string::npos) throw Unreadable("flow mapping entry without a key");
      obj[unquote(strip(item.substr(0, colon)))] = scalar(item.substr(colon + 1));
    }
    return obj;
  }
  if (first == '\'' || first == '"') {
    if (s.size() < 2 || s.back() != first) throw Unreadable("unterminated quoted scalar");
    return unquote(s);
  }
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  // Numbers: YAML 1.2 core schema integers and floats.
  const char* begin = s.c_str();
  char* end = nullptr;
  const bool digits_only = s.find_first_not_of("+-0123456789") == std::string::npos;
  if (digits_only) {
    const long long v = std::strtoll(begin, &end, 10);
    if (end && *end == '\0') return v;
  }
  if (s.find_first_not_of("+-0123456789.eE") == std::string::npos && s.find_first_of("0123456789") != std::string::npos) {
    const double v = std::strtod(begin, &end);
    if (end && *end == '\0') return v;
  }
  return s;
}

class Parser {
 public:
  explicit Parser(std::vector<Line> lines) : lines_(std::move(lines)) {}

  json document() {
    if (lines_.empty()) return json::object();
    json value = block(lines_[0].indent);
    if (pos_ != lines_.size()) throw Unreadable("unexpected indentation");
    return value;
  }

 private:
  bool is_item(const Line& l) const { return l.text == "-" || l.text.rfind("- ", 0) == 0; }

  json block(int indent) {
    if (pos_ >= lines_.size()) return nullptr;
    return is_item(lines_[pos_]) ? sequence(indent) : mapping(indent);
  }

  // The value after "key:" or "-" with nothing else on its line: the more indented lines that follow (or
  // a sequence at the key's own indentation, which YAML allows).
  json nested(int parent_indent, bool parent_is_key) {
    if (pos_ >= lines_.size()) return nullptr;
    const Line& next = lines_[pos_];
    if (next.indent > parent_indent || (parent_is_key && next.indent == parent_indent && is_item(next))) {
      return block(next.indent);
    }
    return nullptr;
  }

  // A block scalar (| or >): the more indented lines, kept (|) or folded into one (>).
  json block_scalar(int parent_indent, char style) {
    std::string out;
    while (pos_ < lines_.size() && lines_[pos_].indent > parent_indent) {
      if (!out.empty()) out += style == '|' ? "\n" : " ";
      out += lines_[pos_].text;
      ++pos_;
    }
    return out + "\n";  // YAML's default chomping keeps one final line break
  }

  json value_after(const std::string& rest, int indent, bool is_key) {
    const std::string v = strip(rest);
    if (v.empty()) return nested(indent, is_key);
    if (v == "|" || v == "|-" || v == ">" || v == ">-") {
      json s = block_scalar(indent, v[0]);
      if (v.size() == 2) s = rstrip(s.get<std::string>());
      return s;
    }
    return scalar(v);
  }

  json mapping(int indent) {
    json obj = json::object();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && !is_item(lines_[pos_])) {
      const std::string text = lines_[pos_].text;
      const std::size_t colon = key_colon(text);
      if (colon == std::string::npos) throw Unreadable("a line that is neither 'key: value' nor '- item': " + text);
      const std::string key = unquote(strip(text.substr(0, colon)));
      ++pos_;
      obj[key] = value_after(text.substr(colon + 1), indent, true);
    }
    if (pos_ < lines_.size() && lines_[pos_].indent > indent) throw Unreadable("unexpected indentation");
    return obj;
  }

  json sequence(int indent) {
    json arr = json::array();
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && is_item(lines_[pos_])) {
      const std::string rest = lines_[pos_].text.size() > 1 ? lines_[pos_].text.substr(2) : "";
      const std::string item = strip(rest);
      if (item.empty()) {
        ++pos_;
        arr.push_back(nested(indent, false));
      } else if (item.front() != '[' && item.front() != '{' && key_colon(item) != std::string::npos) {
        // "- key: value" opens a mapping whose keys sit where "key" does.
        lines_[pos_] = Line{indent + 2 + static_cast<int>(rest.find_first_not_of(' ')), item};
        arr.push_back(mapping(lines_[pos_].indent));
      } else {
        ++pos_;
        arr.push_back(scalar(item));
      }
    }
    if (pos_ < lines_.size() && lines_[pos_].indent > indent) throw Unreadable("unexpected indentation");
    return arr;
  }

  std::vector<Line> lines_;
  std::size_t pos_ = 0;
};

}  // namespace

std::optional<json> parse_card_front_matter(const std::string& readme) {
  std::size_t at = 0;
  auto next_line = [&](std::string& line) {
    if (at >= readme.size()) return false;
    std::size_t end = readme.find('\n', at);
    if (end == std::string::npos) end = readme.size();
    line = readme.substr(at, end - at);
    if (!line.empty() && line.back() == '\r') line.pop_back();
    at = end + 1;
    return true;
  };
  std::string line;
  if (readme.rfind("\xEF\xBB\xBF", 0) == 0) at = 3;  // a UTF-8 byte order mark
  if (!next_line(line) || rstrip(line) != "---") return std::nullopt;
  std::vector<Line> lines;
  bool closed = false;
  while (next_line(line)) {
    if (rstrip(line) == "---") {
      closed = true;
      break;
    }
    if (line.find('\t') < line.find_first_not_of(" \t")) return std::nullopt;  // YAML indents with spaces only
    const std::string text = rstrip(without_comment(line));
    if (strip(text).empty()) continue;
    const int indent = static_cast<int>(text.find_first_not_of(' '));
    lines.push_back(Line{indent, text.substr(static_cast<std::size_t>(indent))});
  }
  if (!closed) return std::nullopt;
  try {
    json doc = Parser(std::move(lines)).document();
    if (!doc.is_object()) return std::nullopt;
    return doc;
  } catch (const Unreadable&) {
    return std::nullopt;
  }
}

json card_tags(const json& card) {
  json tags = json::array();
  std::set<std::string> seen;
  auto add = [&](const json& v, const std::string& prefix) {
    if (!v.is_string() && !v.is_number()) return;
    const std::string t = prefix + (v.is_string() ? v.get<std::string>() : v.dump());
    if (!t.empty() && seen.insert(t).second) tags.push_back(t);
  };
  auto add_all = [&](const char* key, const std::string& prefix) {
    if (!card.is_object() || !card.contains(key)) return;
    const json& v = card[key];
    if (v.is_array()) {
      for (const auto& item : v) add(item, prefix);
    } else {
      add(v, prefix);
    }
  };
  add_all("tags", "");
  add_all("library_name", "");
  add_all("pipeline_tag", "");
  add_all("datasets", "dataset:");
  add_all("base_model", "base_model:");
  add_all("language", "");
  add_all("license", "license:");
  return tags;
}

}  // namespace detrq::hub::detail
