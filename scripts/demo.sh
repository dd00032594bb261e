#!/usr/bin/env bash
# Sets up, builds, and runs detrq's main job on what the project ships (the README's first command).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)"
./build/release/detrq --version
