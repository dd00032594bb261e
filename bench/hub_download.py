"""Download throughput on loopback: `detrq pull` against huggingface_hub's `hf_hub_download`, the same
LFS file from the same `detrq hub-server`, each into a fresh cache, alternating, several rounds.

usage: hub_download.py --detrq build/release/detrq [--mb 512] [--rounds 3] [--results bench/RESULTS.md]"""
import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from results_md import replace_section

HF_CODE = """
import sys, time
from huggingface_hub import hf_hub_download
t = time.perf_counter()
hf_hub_download("bench/model", "model.bin")
print(time.perf_counter() - t)
"""


def machine():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, Linux {platform.release()}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--detrq", required=True)
    ap.add_argument("--mb", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--results", default="")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="detrq_bench_hub_")
    try:
        with open(os.path.join(work, "tokens"), "w") as f:
            f.write("bench-token write\n")
        server = subprocess.Popen([args.detrq, "-q", "hub-server", "--root", os.path.join(work, "root"), "--port", "0",
                                   "--tokens", os.path.join(work, "tokens")], stdout=subprocess.PIPE, text=True)
        endpoint = server.stdout.readline().split()[-1]
        model = os.path.join(work, "model.bin")
        with open(model, "wb") as f:
            f.write(b"\0")
            block = os.urandom(1 << 20)
            for i in range(args.mb):
                f.write(i.to_bytes(8, "little") + block[8:])
        size = os.path.getsize(model)
        base = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
        base.update(HF_ENDPOINT=endpoint, HF_HUB_DISABLE_PROGRESS_BARS="1", HF_HUB_DISABLE_TELEMETRY="1")
        subprocess.run([args.detrq, "-q", "publish", "--hf-repo", "bench/model", "--file", model], check=True,
                       env=dict(base, HF_HOME=os.path.join(work, "pub"), HF_TOKEN="bench-token"), stdout=subprocess.DEVNULL)
        os.remove(model)  # keep the disk footprint to the server copy and one download at a time

        detrq_s, hf_s = [], []
        for r in range(args.rounds):
            home = os.path.join(work, f"detrq{r}")
            t = time.perf_counter()
            subprocess.run([args.detrq, "-q", "pull", "--hf-repo", "bench/model", "--files", "model.bin"], check=True,
                           env=dict(base, HF_HOME=home), stdout=subprocess.DEVNULL)
            detrq_s.append(time.perf_counter() - t)
            shutil.rmtree(home)
            home = os.path.join(work, f"hf{r}")
            out = subprocess.run([sys.executable, "-c", HF_CODE], check=True, env=dict(base, HF_HOME=home),
                                 capture_output=True, text=True)
            hf_s.append(float(out.stdout.strip().splitlines()[-1]))
            shutil.rmtree(home)
        server.terminate()
        server.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)

    mbps = lambda s: size / 1e6 / s
    d, h = statistics.median(detrq_s), statistics.median(hf_s)
    import huggingface_hub
    lines = [
        f"- machine: {machine()}",
        f"- file: {size / 1e6:.0f} MB LFS object, loopback, `detrq hub-server`, fresh cache per run, "
        f"{args.rounds} alternating rounds, median",
        f"- detrq pull (whole process, sha256 checked): {mbps(d):.0f} MB/s ({d:.2f} s)",
        f"- huggingface_hub {huggingface_hub.__version__} hf_hub_download (call only): {mbps(h):.0f} MB/s ({h:.2f} s)",
        f"- ratio detrq / huggingface_hub: {h / d:.2f}x",
    ]
    print("\n".join(lines))
    if args.results:
        replace_section(args.results, "## hub: download throughput",
                        "`python bench/hub_download.py --detrq build/release/detrq`\n\n" + "\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
