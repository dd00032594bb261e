#!/usr/bin/env python3
"""End-to-end runtime benchmark: detrq against onnxruntime (PyPI) on one model, same input, same
thread count, one sitting. Reports median latency, peak RSS of each process, and checks parity
(dets within 1e-4, labels within 1e-3). Optionally writes the figures into bench/RESULTS.md.

Usage (from the checkout, after building the release preset):
  .venv/bin/python bench/runtime_vs_onnxruntime.py [--model ../shared/models/rfdetr_small_random.onnx]
      [--threads 2] [--repeat 10] [--rounds 6 | --interleave 40] [--detrq build/release/detrq] [--write-results]
"""
import argparse
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time

import numpy as np

from results_md import replace_section

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def run_measured(cmd):
    """Runs cmd and returns (stdout, stderr, peak RSS MiB of that child alone, from wait4)."""
    with tempfile.TemporaryFile("w+") as err_file:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err_file, text=True)
        out = proc.stdout.read()  # until the child closes it; then reap it ourselves
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err_file.seek(0)
        err = err_file.read()
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd[:2])} failed ({proc.returncode}):\n{err}")
    return out, err, usage.ru_maxrss / 1024.0


def ort_child(args):
    """Runs inside a child process: onnxruntime latency, outputs saved for the parity check."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    x = np.load(args.input)
    feed = {session.get_inputs()[0].name: x}
    outputs = session.run(None, feed)  # warm-up
    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        outputs = session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    for meta, value in zip(session.get_outputs(), outputs):
        np.save(os.path.join(args.out, meta.name + ".npy"), value)
    print(json.dumps({"median_ms": float(np.median(times)), "version": ort.__version__}))


def ort_loop(args):
    """Runs inside a child process: one onnxruntime session answering "run" lines with a latency in ms
    (see --interleave); at end of input, its outputs are saved for the parity check."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(args.model, options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: np.load(args.input)}
    outputs = session.run(None, feed)
    print("ready", flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            continue
        start = time.perf_counter()
        outputs = session.run(None, feed)
        print(f"{(time.perf_counter() - start) * 1000.0:.3f}", flush=True)
    for meta, value in zip(session.get_outputs(), outputs):
        np.save(os.path.join(args.out, meta.name + ".npy"), value)
    print(json.dumps({"version": ort.__version__}), flush=True)


class LoopChild:
    """A resident child speaking the "run" -> latency protocol; peak RSS from wait4 when it ends."""

    def __init__(self, cmd):
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            sys.exit(f"{cmd[0]} did not start")
        self.times = []

    def run_once(self):
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        self.times.append(float(self.proc.stdout.readline()))

    def finish(self):
        self.proc.stdin.close()
        rest = self.proc.stdout.read()
        _, status, usage = os.wait4(self.proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit("a benchmark child failed")
        return rest, usage.ru_maxrss / 1024.0


def machine():
    model = "unknown"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return f'"{model}", {os.cpu_count()} cores, {platform.system()} {platform.release()}'


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    shared = os.environ.get("DETRQ_SHARED_DIR", os.path.join(ROOT, "..", "shared"))
    p.add_argument("--model", default=os.path.join(shared, "models", "rfdetr_small_random.onnx"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=10)
    p.add_argument("--rounds", type=int, default=1,
                   help="alternate the two runtimes this many times (onnxruntime first, then detrq first...) and "
                        "report the median of the rounds' medians: a machine whose speed drifts then weighs on both")
    p.add_argument("--interleave", type=int, default=0, metavar="N",
                   help="instead of rounds: both runtimes stay loaded and run one inference each in turn, N times "
                        "(a pause between, so that neither's spinning threads slow the other); reports the medians "
                        "and the median of the N paired ratios")
    p.add_argument("--detrq", default=os.path.join(ROOT, "build", "release", "detrq"))
    p.add_argument("--session-loop", default=os.path.join(ROOT, "build", "release", "bench", "session_loop"))
    p.add_argument("--write-results", action="store_true", help="replace this benchmark's section of bench/RESULTS.md")
    p.add_argument("--ort-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--ort-loop", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.ort_child:
        return ort_child(args)
    if args.ort_loop:
        return ort_loop(args)

    if not os.path.exists(args.model):
        sys.exit(f"no model at {args.model}")
    with tempfile.TemporaryDirectory() as tmp:
        # A fixed pseudo-image input in the model's shape (parity does not need a photograph here).
        x = np.random.default_rng(0).standard_normal((1, 3, 512, 512)).astype(np.float32)
        inp = os.path.join(tmp, "input.npy")
        np.save(inp, x)
        ort_out, detrq_out = os.path.join(tmp, "ort"), os.path.join(tmp, "detrq")
        os.makedirs(ort_out)
        ort_ms, detrq_ms_all, ort_rss, detrq_rss = [], [], 0.0, 0.0

        def run_ort():
            nonlocal ort_rss
            out, _, rss = run_measured([sys.executable, __file__, "--ort-child", "--model", args.model, "--input", inp,
                                        "--out", ort_out, "--threads", str(args.threads), "--repeat", str(args.repeat)])
            result = json.loads(out.strip().splitlines()[-1])
            ort_ms.append(result["median_ms"])
            ort_rss = max(ort_rss, rss)
            return result

        def run_detrq():
            nonlocal detrq_rss
            out, _, rss = run_measured([args.detrq, "run", args.model, "--input", f"input={inp}", "--output-dir",
                                        detrq_out, "--threads", str(args.threads), "--repeat", str(args.repeat)])
            detrq_ms_all.append(float(re.search(r"latency median=([0-9.]+) ms", out).group(1)))
            detrq_rss = max(detrq_rss, rss)

        pair_ratios = []
        if args.interleave > 0:
            ort_child_proc = LoopChild([sys.executable, __file__, "--ort-loop", "--model", args.model, "--input", inp,
                                        "--out", ort_out, "--threads", str(args.threads)])
            detrq_child = LoopChild([args.session_loop, args.model, inp, str(args.threads)])
            for i in range(args.interleave):
                for child in ((ort_child_proc, detrq_child) if i % 2 == 0 else (detrq_child, ort_child_proc)):
                    time.sleep(0.05)
                    child.run_once()
            rest, ort_rss = ort_child_proc.finish()
            ort = json.loads(rest.strip().splitlines()[-1])
            _, detrq_rss = detrq_child.finish()
            ort_ms, detrq_ms_all = ort_child_proc.times, detrq_child.times
            pair_ratios = [d / o for d, o in zip(detrq_ms_all, ort_ms)]
            out, _, _ = run_measured([args.detrq, "run", args.model, "--input", f"input={inp}", "--output-dir",
                                      detrq_out, "--threads", str(args.threads)])
        else:
            for r in range(max(1, args.rounds)):
                if r % 2 == 0:
                    ort = run_ort()
                    run_detrq()
                else:
                    run_detrq()
                    ort = run_ort()
        ort["median_ms"] = float(np.median(ort_ms))
        detrq_ms = float(np.median(detrq_ms_all))
        parity = {}
        for name, atol in (("dets", 1e-4), ("labels", 1e-3)):
            a, b = np.load(os.path.join(detrq_out, name + ".npy")), np.load(os.path.join(ort_out, name + ".npy"))
            finite = np.isfinite(b)
            same_inf = np.array_equal(np.isinf(a), np.isinf(b)) and np.array_equal(a[~finite], b[~finite])
            diff = float(np.max(np.abs(a[finite] - b[finite]))) if finite.any() else 0.0
            parity[name] = (diff, diff <= atol and same_inf, atol)

    if pair_ratios:
        how = (f"{args.interleave} inferences of each, one of each in turn (50 ms pauses) after one warm-up; "
               f"median latencies")
    else:
        how = f"median of {args.repeat} runs after one warm-up" + (
            f", median of {len(ort_ms)} alternating rounds" if len(ort_ms) > 1 else "")
    lines = [
        f"model: {os.path.basename(args.model)}, {args.threads} threads, {how}",
        f"machine: {machine()}",
        "",
        "| runtime | median latency | peak RSS |",
        "| --- | --- | --- |",
        f"| onnxruntime {ort['version']} | {ort['median_ms']:.1f} ms | {ort_rss:.0f} MiB |",
        f"| detrq | {detrq_ms:.1f} ms | {detrq_rss:.0f} MiB |",
        f"| ratio detrq/onnxruntime | {detrq_ms / ort['median_ms']:.2f}x | {detrq_rss / ort_rss:.2f}x |",
        "",
        *([f"paired ratios detrq/onnxruntime: median {np.median(pair_ratios):.3f}, quartiles "
           f"{np.percentile(pair_ratios, 25):.3f} to {np.percentile(pair_ratios, 75):.3f}; detrq faster in "
           f"{sum(r < 1.0 for r in pair_ratios)} of {len(pair_ratios)} pairs", ""] if pair_ratios else []),
        *([f"rounds (ms): onnxruntime {', '.join(f'{v:.1f}' for v in ort_ms)}; "
           f"detrq {', '.join(f'{v:.1f}' for v in detrq_ms_all)}", ""] if len(ort_ms) > 1 and not pair_ratios else []),
        "parity: " + ", ".join(f"{n} max |diff| {d:.2e} ({'ok' if ok else 'FAIL'}, limit {t:g})" for n, (d, ok, t) in parity.items()),
    ]
    print("\n".join(lines))
    if args.write_results:
        replace_section(os.path.join(HERE, "RESULTS.md"), "## runtime: detrq vs onnxruntime, end to end",
                        "\n".join(lines) + "\n\nReproduce: `.venv/bin/python bench/runtime_vs_onnxruntime.py "
                        + (f"--interleave {args.interleave}" if pair_ratios else f"--rounds {args.rounds}")
                        + " --write-results`\n")
    return 0 if all(ok for _, ok, _ in parity.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
