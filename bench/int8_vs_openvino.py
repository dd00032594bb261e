#!/usr/bin/env python3
"""detrq's CPU runtime against OpenVINO (INFERENCE_PRECISION_HINT f32, and its default) and onnxruntime on
the same FP32 and Q/DQ ONNX files, 2 threads, interleaved: every runtime keeps one resident session per file
in a child process and the rounds run one inference of each in turn, so the shared machine's drifting speed
weighs on all alike. Prints a markdown table of medians (ms) and detrq's paired ratio against detrq FP32 (the
median over rounds of int8 / fp32 measured back to back).

Usage: int8_vs_openvino.py --input x.npy --file LABEL=MODEL.onnx ... [--fp32 LABEL] [--rounds 20]
       [--threads 2] [--session-loop build/release/bench/session_loop]
Needs openvino and onnxruntime (bench/requirements-bench.txt) in the Python that runs it.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUNTIMES = ("detrq", "onnxruntime", "openvino-f32", "openvino-default")


def child(args):
    """Runs inside a child process: one session of `args.child` answering "run" lines with a latency in ms."""
    x = np.load(args.input)
    if args.child == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
        feed = {session.get_inputs()[0].name: x}
        infer = lambda: session.run(None, feed)  # noqa: E731
    else:
        import openvino as ov

        config = {"INFERENCE_NUM_THREADS": args.threads, "PERFORMANCE_HINT": "LATENCY"}
        if args.child == "openvino-f32":
            config["INFERENCE_PRECISION_HINT"] = "f32"
        compiled = ov.Core().compile_model(args.model, "CPU", config)
        request = compiled.create_infer_request()
        infer = lambda: request.infer({0: x})  # noqa: E731
    infer()
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            continue
        start = time.perf_counter()
        infer()
        print(f"{(time.perf_counter() - start) * 1000.0:.3f}", flush=True)


class LoopChild:
    """A resident child speaking the "run" -> latency protocol."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            sys.exit(f"{' '.join(cmd)} did not start")
        self.times = []

    def run_once(self):
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        self.times.append(float(self.proc.stdout.readline()))

    def finish(self):
        self.proc.stdin.close()
        self.proc.wait()


def machine():
    model, flags = "unknown", ""
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("Model name:"):
            model = line.split(":", 1)[1].strip()
        if line.startswith("Flags:"):
            wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "amx_tile")
            flags = " ".join(f for f in line.split(":", 1)[1].split() if f in wanted)
    return f"{model}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; flags: {flags}"


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", required=True, help=".npy input (1x3x512x512 float32)")
    p.add_argument("--file", action="append", default=[], help="LABEL=MODEL.onnx (repeatable)")
    p.add_argument("--fp32", help="label of the FP32 file the ratios refer to (default: the first)")
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--runtimes", default=",".join(RUNTIMES))
    p.add_argument("--session-loop", default=os.path.join(ROOT, "build", "release", "bench", "session_loop"))
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--model", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return
    if not args.file:
        p.error("at least one --file LABEL=MODEL.onnx")
    files = [f.split("=", 1) for f in args.file]
    fp32 = args.fp32 or files[0][0]
    runtimes = args.runtimes.split(",")
    children = {}
    for label, path in files:
        for rt in runtimes:
            cmd = ([args.session_loop, path, args.input, str(args.threads)] if rt == "detrq" else
                   [sys.executable, __file__, "--child", rt, "--model", path, "--input", args.input,
                    "--threads", str(args.threads)])
            children[(label, rt)] = LoopChild(cmd)
    for _ in range(args.rounds):
        for c in children.values():
            c.run_once()
    for c in children.values():
        c.finish()
    print(f"Machine: {machine()}; {args.threads} threads, {args.rounds} interleaved rounds, median ms\n")
    print("| file | " + " | ".join(runtimes) + " | detrq / detrq FP32 (paired) | detrq / OpenVINO f32 (paired) |")
    print("| --- |" + " ---: |" * (len(runtimes) + 2))
    base = np.array(children[(fp32, "detrq")].times)
    result = {}
    for label, _ in files:
        cells = [f"{np.median(children[(label, rt)].times):.1f}" for rt in runtimes]
        mine = np.array(children[(label, "detrq")].times)
        vs_fp32 = float(np.median(mine / base))
        vs_ov = (float(np.median(mine / np.array(children[(label, "openvino-f32")].times)))
                 if "openvino-f32" in runtimes else float("nan"))
        result[label] = {rt: float(np.median(children[(label, rt)].times)) for rt in runtimes}
        result[label].update(vs_fp32=vs_fp32, vs_openvino_f32=vs_ov)
        print(f"| {label} | " + " | ".join(cells) + f" | {vs_fp32:.2f} | {vs_ov:.2f} |")
    print("\n" + json.dumps(result))


if __name__ == "__main__":
    main()
