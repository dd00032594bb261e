#!/usr/bin/env bash
# Sets up, builds and runs the whole test suite (the README's second command, and what CI runs).
#   scripts/test.sh            release build, all tests
#   scripts/test.sh asan       the AddressSanitizer + UBSan build's tests (C++ only)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${1:-release}"
scripts/setup.sh
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset" -j"$(nproc)"
ctest --preset "$preset" -j"$(nproc)"
