#!/usr/bin/env python3
"""Q/DQ models in detrq's runtime with the int8 MatMul/Conv fusion and without it, against onnxruntime
running the same Q/DQ model: same threads, one sitting. The Q/DQ models are made here with
`detrq calibrate` (default policy) from the small random RF-DETR of ../shared and models/rfdetr_shapes.onnx.

Usage (from the checkout, after building detrq_cli and qdq_int8_bench of the release preset):
  .venv/bin/python bench/qdq_int8_vs_onnxruntime.py [--threads 2] [--repeat 10] [--write-results]
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from results_md import replace_section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def ort_median_ms(model, threads, repeat):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    feed = {}
    for i in session.get_inputs():
        shape = [d if isinstance(d, int) else 1 for d in i.shape]
        feed[i.name] = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    session.run(None, feed)  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return float(np.median(times)), ort.__version__


def machine():
    model = "unknown"
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
    return f'"{model}", {os.cpu_count()} cores, {platform.system()} {platform.release()}'


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = os.environ.get("DETRQ_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--detrq", default=os.path.join(ROOT, "build", "release", "detrq"))
    p.add_argument("--bench", default=os.path.join(ROOT, "build", "release", "bench", "qdq_int8_bench"))
    p.add_argument("--write-results", action="store_true", help="replace this benchmark's section of bench/RESULTS.md")
    args = p.parse_args()
    shapes = os.path.join(ROOT, "models", "rfdetr_shapes.onnx")
    shapes_calib = os.path.join(ROOT, "data", "shapes_calib")
    # The backbone's linear layers (and the projector) in INT8 too: see the quant section for its AP.
    backbone = [a for p in ("*backbone*/query/*", "*backbone*/key/*", "*backbone*/value/*",
                            "*backbone*/output/dense/*", "*backbone*/mlp/*", "*projector*") for a in ("--include", p)]
    models = [(os.path.join(shared, "models", "rfdetr_small_random.onnx"), os.path.join(shared, "images"), [], ""),
              (shapes, shapes_calib, [], ""),
              (shapes, shapes_calib, backbone, " + backbone linears")]
    rows = []
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for index, (model, images, extra, label) in enumerate(models):
            if not os.path.exists(model):
                print(f"skipping {model}: absent", file=sys.stderr)
                continue
            qdq = os.path.join(tmp, f"{index}.qdq.onnx")
            r = subprocess.run([args.detrq, "calibrate", "--onnx", model, "--images", images, "--count", "8",
                                "--cache-path", os.path.join(tmp, "c.cache"), "--qdq-out", qdq, *extra],
                               capture_output=True, text=True)
            if r.returncode != 0:
                sys.exit(f"detrq calibrate failed on {model}:\n{r.stderr}")
            out = subprocess.run([args.bench, qdq, str(args.threads), str(args.repeat)], capture_output=True,
                                 text=True, check=True).stdout
            d = json.loads(out.strip().splitlines()[-1])
            ort_ms, ort_version = ort_median_ms(qdq, args.threads, args.repeat)
            rows.append((os.path.basename(model) + label, d, ort_ms, ort_version))
    load_after = os.getloadavg()
    lines = [
        f"{args.threads} threads, median of {args.repeat} runs after one warm-up; Q/DQ models from `detrq calibrate` "
        "(entropy, 8 images, default policy unless the row says more)",
        f"machine: {machine()}; load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after",
        "",
        "| Q/DQ model | int8 MatMul + Conv nodes | onnxruntime | detrq Q/DQ in float | detrq int8 fused | fused / float | fused / onnxruntime |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, d, ort_ms, ort_version in rows:
        lines.append(f"| {name} | {d['int8_nodes']} | {ort_ms:.1f} ms (onnxruntime {ort_version}) | "
                     f"{d['float_ms']:.1f} ms | {d['fused_ms']:.1f} ms | {d['fused_ms'] / d['float_ms']:.2f}x | "
                     f"{d['fused_ms'] / ort_ms:.2f}x |")
    print("\n".join(lines))
    if args.write_results:
        replace_section(os.path.join(HERE, "RESULTS.md"), "## quant: Q/DQ models with int8 MatMuls vs onnxruntime",
                        "\n".join(lines) + "\n\nReproduce: `.venv/bin/python bench/qdq_int8_vs_onnxruntime.py --write-results`\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
