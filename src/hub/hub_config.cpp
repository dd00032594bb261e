// Reads the Hub configuration from huggingface_hub's environment variables and token file.
#include "detrq/hub/hub_config.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace detrq::hub {
namespace {

std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// "~" at the start means the home folder, as os.path.expanduser does.
std::filesystem::path expand_user(const std::string& p) {
  if (!p.empty() && p[0] == '~' && (p.size() == 1 || p[1] == '/')) {
    const std::string home = env("HOME");
    if (!home.empty()) return std::filesystem::path(home + p.substr(1));
  }
  return std::filesystem::path(p);
}

bool is_true(std::string v) {
  std::transform(v.begin(), v.end(), v.begin(), [](unsigned char c) { return std::toupper(c); });
  return v == "1" || v == "ON" || v == "YES" || v == "TRUE";
}

std::string trim(std::string s) {
  auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  return s;
}

}  // namespace

HubConfig HubConfig::from_environment() {
  HubConfig c;
  if (std::string e = env("HF_ENDPOINT"); !e.empty()) {
    while (!e.empty() && e.back() == '/') e.pop_back();
    c.endpoint = e;
  }
  std::string home_env = env("HF_HOME");
  std::filesystem::path hf_home;
  if (!home_env.empty()) {
    hf_home = expand_user(home_env);
  } else {
    std::string xdg = env("XDG_CACHE_HOME");
    hf_home = (xdg.empty() ? expand_user("~/.cache") : std::filesystem::path(xdg)) / "huggingface";
  }
  if (std::string v = env("HF_HUB_CACHE"); !v.empty()) {
    c.cache_dir = expand_user(v);
  } else if (std::string legacy = env("HUGGINGFACE_HUB_CACHE"); !legacy.empty()) {
    c.cache_dir = expand_user(legacy);
  } else {
    c.cache_dir = hf_home / "hub";
  }
  c.token = trim(env("HF_TOKEN"));
  if (!c.token.empty()) c.token_source = "HF_TOKEN";
  if (c.token.empty()) {
    c.token = trim(env("HUGGING_FACE_HUB_TOKEN"));
    if (!c.token.empty()) c.token_source = "HUGGING_FACE_HUB_TOKEN";
  }
  if (c.token.empty()) {
    std::string token_path_env = env("HF_TOKEN_PATH");
    const std::filesystem::path token_path = token_path_env.empty() ? hf_home / "token" : expand_user(token_path_env);
    std::ifstream in(token_path);
    if (in) {
      std::stringstream ss;
      ss << in.rdbuf();
      c.token = trim(ss.str());
      if (!c.token.empty()) c.token_source = token_path.string();
    }
  }
  std::string offline = env("HF_HUB_OFFLINE");
  if (offline.empty()) offline = env("TRANSFORMERS_OFFLINE");
  c.offline = is_true(offline);
  return c;
}

}  // namespace detrq::hub
