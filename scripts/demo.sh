#!/usr/bin/env bash
# Sets up, builds, and runs detrq's main job on what the project ships (the README's first command):
# the maintainer pipeline on models/rfdetr_shapes.onnx (calibration on data/shapes_calib, INT8-vs-FP32
# accuracy on data/shapes_val, model card; no upload), then the user side: a CPU engine and detections.
# Prints how long set-up, build and the run itself took (lines starting with "demo: ").
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
scripts/setup.sh
setup_done=$SECONDS
cmake --preset release >/dev/null
cmake --build --preset release -j"$(nproc)" --target detrq_cli
build_done=$SECONDS
detrq=./build/release/detrq
work=build/demo
$detrq --version
$detrq prepare --skip-upload --work-dir "$work"
$detrq build-engine --qdq "$work/inference_model.qdq.onnx" --output "$work/model.engine"
# A glob, not `ls | head`: under pipefail, head closing the pipe early can kill ls with SIGPIPE (exit 141).
images=(data/shapes_val/*.jpg)
$detrq detect --engine "$work/model.engine" "${images[0]}" --output-dir "$work/detections"
echo "model card: $work/README.md, report: $work/report.html, picture: $work/detections/" >&2
echo "demo: set-up $((setup_done - start)) s, build $((build_done - setup_done)) s, run $((SECONDS - build_done)) s" >&2
