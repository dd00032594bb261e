#!/usr/bin/env python3
"""Old detrq binary against a new one on the same model and input, as interleaved pairs: two resident
bench/session_loop processes (one per build) each run one inference per pair, in an order that
alternates from pair to pair, so that this machine's drifting speed weighs on both alike. Prints the
median of the per-pair new/old latency ratios (below 1: the new build is faster).

Usage: bench/old_vs_new.py --old OLD/session_loop --new NEW/session_loop --model M.onnx --input X.npy
         [--threads 2] [--pairs 40]"""
import argparse
import json
import statistics
import subprocess
import time


def start(binary, model, npy, threads):
    p = subprocess.Popen([binary, model, npy, str(threads)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True, bufsize=1)
    line = p.stdout.readline().strip()
    if line != "ready":
        raise SystemExit(f"{binary}: did not start ({line!r})")
    return p


def one_run(p):
    p.stdin.write("run\n")
    p.stdin.flush()
    return float(p.stdout.readline())


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--old", required=True)
    ap.add_argument("--new", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True, help=".npy input of the model's shape")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--pairs", type=int, default=40)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    procs = {"old": start(args.old, args.model, args.input, args.threads),
             "new": start(args.new, args.model, args.input, args.threads)}
    for p in procs.values():
        one_run(p)  # a second warm-up each, loaded and ready
    ratios, old_ms, new_ms = [], [], []
    for i in range(args.pairs):
        order = ("old", "new") if i % 2 == 0 else ("new", "old")
        ms = {}
        for name in order:
            ms[name] = one_run(procs[name])
            time.sleep(0.05)
        old_ms.append(ms["old"])
        new_ms.append(ms["new"])
        ratios.append(ms["new"] / ms["old"])
    for p in procs.values():
        p.stdin.close()
        p.wait()
    result = {"model": args.model, "threads": args.threads, "pairs": args.pairs,
              "median_ratio": statistics.median(ratios), "old_median_ms": statistics.median(old_ms),
              "new_median_ms": statistics.median(new_ms), "new_faster_pairs": sum(r < 1 for r in ratios)}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.model}: median new/old {result['median_ratio']:.3f} over {args.pairs} pairs "
              f"(old {result['old_median_ms']:.1f} ms, new {result['new_median_ms']:.1f} ms; "
              f"new faster in {result['new_faster_pairs']})")


if __name__ == "__main__":
    main()
