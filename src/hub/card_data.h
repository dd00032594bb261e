// A model card's metadata as the Hub serves it: the YAML front matter of README.md (between a first line
// "---" and the next "---") read into JSON (`cardData`), and the tags the Hub derives from it.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace detrq::hub::detail {

// The front matter of a README as JSON: block mappings and sequences by indentation, flow sequences
// ([a, b]) and flow mappings of scalars, plain, single- and double-quoted scalars, booleans, numbers, null,
// comments. What YAML offers beyond that (anchors, multi-line block scalars, tags) makes the card unreadable
// here: nullopt, as for a README without front matter.
std::optional<nlohmann::json> parse_card_front_matter(const std::string& readme);

// The Hub's tags for a card: its `tags`, then `library_name`, `pipeline_tag`, each `datasets` entry as
// "dataset:X", each `base_model` as "base_model:X", `language` entries, and "license:X"; each once.
nlohmann::json card_tags(const nlohmann::json& card_data);

}  // namespace detrq::hub::detail
