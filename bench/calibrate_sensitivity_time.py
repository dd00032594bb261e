"""What `detrq calibrate` costs with the AP budget (issue 16's goal: calibration plus sensitivity on 32 images of
models/rfdetr_shapes.onnx within 5 minutes on 2 cores). Each round runs, interleaved, the default (budget 0.1,
within it on this model: no search) and runs where the search must happen: `--ap-budget 0` on the default
policy, and `--method minmax` (a policy that really loses accuracy) at the default budget. Wall and CPU time of
each run, the search's evaluations and its own seconds from calibrate's --json; medians over the rounds.

    python3 bench/calibrate_sensitivity_time.py [--detrq build/release/detrq] [--rounds 2] [--threads 2] [--write]

--write replaces the section of bench/RESULTS.md."""
import argparse
import datetime
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from results_md import replace_section  # noqa: E402

CONFIGS = [("default (budget 0.1)", []), ("--ap-budget 0", ["--ap-budget", "0"]),
           ("--method minmax", ["--method", "minmax"])]


def lscpu():
    info = {}
    for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def run(detrq, threads, extra, tmp):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run([detrq, "--json", "calibrate", "--onnx", os.path.join(ROOT, "models", "rfdetr_shapes.onnx"),
                        "--images", os.path.join(ROOT, "data", "shapes_calib"), "--threads", str(threads),
                        "--cache-path", os.path.join(tmp, "c.cache"), "--qdq-out", os.path.join(tmp, "q.onnx"),
                        "--table", os.path.join(tmp, "t.json"), "--report", os.path.join(tmp, "r.html"), *extra],
                       capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        sys.exit(r.stderr)
    out = json.loads(r.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall": wall, "cpu": cpu, "evaluations": out["ap_budget"]["evaluations"],
            "search": out["ap_budget"]["seconds"], "share": out["int8_mac_share"],
            "float_groups": len(out["ap_budget"]["float_groups"]), "statistics": out["statistics_seconds"]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--detrq", default=os.path.join(ROOT, "build", "release", "detrq"))
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    cpu = lscpu()
    load_before = os.getloadavg()[0]
    results = {name: [] for name, _ in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.rounds):
            for name, extra in CONFIGS:
                r = run(args.detrq, args.threads, extra, tmp)
                print(f"round {i + 1} {name}: {r}", flush=True)
                results[name].append(r)
    load_after = os.getloadavg()[0]
    rows = ["| run | wall (s) | CPU (s) | statistics (s) | evaluations | search (s) | groups in float | INT8 share |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, rs in results.items():
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        rows.append(f"| {name} | {med['wall']:.1f} | {med['cpu']:.1f} | {med['statistics']:.1f} | {med['evaluations']:.0f} | "
                    f"{med['search']:.1f} | {med['float_groups']:.0f} | {100 * med['share']:.1f}% |")
    flags = cpu.get("Flags", "")
    body = (f"Measured {datetime.date.today().isoformat()} with `bench/calibrate_sensitivity_time.py --rounds {args.rounds} "
            f"--threads {args.threads}`: `detrq calibrate --images data/shapes_calib` (32 images: 24 calibrate, 8 held "
            f"out), the runs of a round interleaved, medians over {args.rounds} rounds.\n"
            f"machine: \"{cpu.get('Model name', '?')}\", {cpu.get('CPU(s)', '?')} CPUs; load average (1 min) "
            f"{load_before:.2f} before, {load_after:.2f} after\n"
            f"flags: {' '.join(f for f in flags.split() if f.startswith(('avx', 'fma', 'sse4', 'amx', 'f16c')))}\n\n"
            + "\n".join(rows) + "\n")
    print(body)
    if args.write:
        replace_section(os.path.join(ROOT, "bench", "RESULTS.md"), "## quant: the AP budget's cost (sensitivity by measurement)", body)


if __name__ == "__main__":
    main()
