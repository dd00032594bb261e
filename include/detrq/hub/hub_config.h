// Where the Hub is and who we are: endpoint, token, cache folder and offline mode, read from the same
// environment variables (and token file) that huggingface_hub reads, so both tools agree.
#pragma once

#include <filesystem>
#include <string>

namespace detrq::hub {

struct HubConfig {
  std::string endpoint = "https://huggingface.co";  // HF_ENDPOINT, without a trailing slash
  std::string token;                                 // HF_TOKEN, else the file $HF_HOME/token (HF_TOKEN_PATH)
  std::string token_source;                          // where `token` came from: "HF_TOKEN", or the file's path
  std::filesystem::path cache_dir;                   // HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub
  bool offline = false;                              // HF_HUB_OFFLINE=1: never touch the network

  // Reads HF_ENDPOINT, HF_HOME, HF_HUB_CACHE (and the legacy HUGGINGFACE_HUB_CACHE), HF_TOKEN,
  // HF_TOKEN_PATH and HF_HUB_OFFLINE exactly as huggingface_hub does.
  static HubConfig from_environment();
};

}  // namespace detrq::hub
