#!/usr/bin/env bash
# Installs everything detrq needs to build and test on Debian 12: Debian packages (apt) and the pinned
# Python test tools (into .venv). Idempotent; run as root or with sudo available.
#   scripts/setup.sh           build + test dependencies
#   scripts/setup.sh --bench   also the benchmark peers (OpenCV)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  build-essential cmake ninja-build pkg-config git ca-certificates
  python3 python3-venv python3-pip
  libprotobuf-dev protobuf-compiler libonnx-dev libonnx-testdata
  libdnnl-dev ocl-icd-opencl-dev opencl-headers libopenblas-dev   # dnnl-config.cmake needs OpenCL (a Recommends of libdnnl-dev)
  libcurl4-openssl-dev libssl-dev
  libjpeg62-turbo-dev libpng-dev libcairo2-dev
  nlohmann-json3-dev libcli11-dev libfmt-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  clang libclang-rt-14-dev
  lz4                                                             # the reference LZ4 tool the Xet tests decode
  qemu-user                                                       # qemu-x86_64 -cpu Haswell-v4: the tests run engines built for AVX2 on an emulated AVX2-only CPU
)
if [[ "${1:-}" == "--bench" ]]; then
  APT_PACKAGES+=(libopencv-dev)
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi

missing=()
for p in "${APT_PACKAGES[@]}"; do
  # No `| grep -q`: under pipefail, grep quitting early can kill dpkg-query with SIGPIPE.
  [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == "install ok installed" ]] || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

# Python test tools, pinned, in the project's own virtual environment.
if [[ ! -x .venv/bin/python ]]; then
  python3 -m venv .venv
fi
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements-test.txt | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  echo "setup: installing pinned Python test tools into .venv" >&2
  .venv/bin/python -m pip install -q --disable-pip-version-check -r requirements-test.txt >&2
  echo "$want" > $stamp
fi

# A second venv with the newest huggingface_hub + hf_xet (pinned): the Xet tests run both clients.
if [[ ! -x .venv-newest/bin/python ]]; then
  python3 -m venv .venv-newest
fi
stamp=.venv-newest/.requirements.sha256
want=$(sha256sum requirements-test-newest.txt | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  echo "setup: installing the newest huggingface_hub into .venv-newest" >&2
  .venv-newest/bin/python -m pip install -q --disable-pip-version-check -r requirements-test-newest.txt >&2
  echo "$want" > $stamp
fi
