#!/usr/bin/env bash
# Sets up, builds, and runs detrq's main job on what the project ships (the README's first command):
# the maintainer pipeline on models/rfdetr_shapes.onnx (calibration on data/shapes_calib, INT8-vs-FP32
# accuracy on data/shapes_val, model card; no upload), then the user side: a CPU engine and detections.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target detrq_cli
detrq=./build/release/detrq
work=build/demo
$detrq --version
$detrq prepare --skip-upload --work-dir "$work"
$detrq build-engine --qdq "$work/inference_model.qdq.onnx" --output "$work/model.engine"
image="$(ls data/shapes_val/*.jpg | head -n 1)"
$detrq detect --engine "$work/model.engine" "$image" --out "$work/detections"
echo "model card: $work/README.md, report: $work/report.html, picture: $work/detections/" >&2
