"""Decode + letterbox + normalize throughput: detrq and OpenCV (bench/vision_preprocess_bench) and
Pillow+numpy, in the same run, single-threaded and one worker per core; prints a Markdown table.
Uses the team's shared images ($DETRQ_SHARED_DIR or ../shared, /images) unless a folder is given.
    .venv/bin/python bench/vision_preprocess.py [build/release/bench/vision_preprocess_bench] [IMAGE_DIR]"""
import json
import multiprocessing
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
from PIL import Image

SIZE = 512
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
REPEAT, ROUNDS = 5, 3


def pillow_preprocess(path):
    im = Image.open(path).convert("RGB")
    w, h = im.size
    scale = np.float32(min(np.float32(SIZE) / np.float32(w), np.float32(SIZE) / np.float32(h)))
    nw, nh = max(1, int(np.float32(w) * scale)), max(1, int(np.float32(h) * scale))
    canvas = Image.new("RGB", (SIZE, SIZE), (114, 114, 114))
    canvas.paste(im.resize((nw, nh), Image.BILINEAR), ((SIZE - nw) // 2, (SIZE - nh) // 2))
    a = np.asarray(canvas, dtype=np.float32) / np.float32(255)
    return np.ascontiguousarray(((a - MEAN) / STD).transpose(2, 0, 1))[1, 256, 256]


def run_chunk(paths):
    return sum(float(pillow_preprocess(p)) for p in paths)


def pillow_rate(images, workers):
    jobs = images * REPEAT
    best = 0.0
    with multiprocessing.Pool(workers) as pool:
        for _ in range(ROUNDS):
            t0 = time.perf_counter()
            if workers == 1:
                run_chunk(jobs)
            else:
                pool.map(run_chunk, [jobs[i::workers] for i in range(workers)])
            best = max(best, len(jobs) / (time.perf_counter() - t0))
    return best


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    binary = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else root / "build/release/bench/vision_preprocess_bench"
    shared = pathlib.Path(os.environ.get("DETRQ_SHARED_DIR", root.parent / "shared"))
    image_dir = pathlib.Path(sys.argv[2]) if len(sys.argv) > 2 else shared / "images"
    images = sorted(str(p) for p in image_dir.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    cores = os.cpu_count() or 1
    native = subprocess.run([str(binary), str(image_dir), str(REPEAT), str(ROUNDS)], check=True,
                            capture_output=True, text=True).stdout
    rows = [json.loads(line) for line in native.splitlines() if line.startswith("{")]
    for workers in (1, cores):
        rows.append({"method": f"pillow {Image.__version__} + numpy", "threads": workers,
                     "images_per_s": pillow_rate(images, workers)})
    print(f"{len(images)} images from {image_dir}, {REPEAT} repeats, best of {ROUNDS} rounds, {cores} cores\n")
    print("| method | threads | images/s | detrq is |")
    print("| --- | --- | --- | --- |")
    for threads in (1, cores):
        d = next(r for r in rows if r["method"] == "detrq" and r["threads"] == threads)["images_per_s"]
        for r in (r for r in rows if r["threads"] == threads):
            ratio = "" if r["method"] == "detrq" else f"{d / r['images_per_s']:.2f}x faster"
            print(f"| {r['method']} | {threads} | {r['images_per_s']:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
