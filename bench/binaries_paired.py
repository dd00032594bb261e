#!/usr/bin/env python3
"""Two detrq binaries (say the last main and a branch) on the same model, interleaved: each round runs
`detrq --json run MODEL --repeat R` with one binary, then the other (the order alternating between rounds),
and the new/old ratio of their median latencies is one pair. Prints the median ratio and every pair; on a
shared, noisy machine only such paired ratios mean anything.

  bench/binaries_paired.py --old OLD/detrq --new build/release/detrq MODEL [MODEL...] [--rounds 16]
      [--repeat 8] [--threads 2] [--cpu-features LIST]
"""
import argparse
import json
import pathlib
import statistics
import subprocess
import tempfile

import numpy as np


def median_ms(binary, model, inputs, out, args):
    cmd = [binary, "--json", "run", model, *[a for name, f in inputs.items() for a in ("--input", f"{name}={f}")],
           "--output-dir", out, "--repeat", str(args.repeat), "--threads", str(args.threads)]
    if args.cpu_features:
        cmd += ["--cpu-features", args.cpu_features]
    return json.loads(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout)["latency_ms"]["median"]


def model_inputs(binary, model, tmp):
    """Random float32 inputs of the model's input shapes, as raw .bin files."""
    info = json.loads(subprocess.run([binary, "--json", "inspect", model], capture_output=True, text=True,
                                     check=True).stdout)
    files = {}
    for i, v in enumerate(info["inputs"]):
        path = pathlib.Path(tmp) / f"input{i}.bin"
        np.random.default_rng(i).standard_normal(v["shape"]).astype(np.float32).tofile(path)
        files[v["name"]] = path
    return files


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+")
    p.add_argument("--old", required=True)
    p.add_argument("--new", required=True)
    p.add_argument("--rounds", type=int, default=16)
    p.add_argument("--repeat", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--cpu-features", default="")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            inputs = model_inputs(args.new, model, tmp)
            ratios = []
            for r in range(args.rounds):
                order = [args.old, args.new] if r % 2 == 0 else [args.new, args.old]
                t = {b: median_ms(b, model, inputs, pathlib.Path(tmp) / "out", args) for b in order}
                ratios.append(t[args.new] / t[args.old])
            print(f"{model}: median new/old {statistics.median(ratios):.3f} over {len(ratios)} pairs, new faster in "
                  f"{sum(x < 1 for x in ratios)}; pairs: {' '.join(f'{x:.3f}' for x in ratios)}")


if __name__ == "__main__":
    main()
