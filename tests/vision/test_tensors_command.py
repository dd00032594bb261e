"""detrq tensors as a user runs it: file selection and order, --count, bad images, exit codes, the manifest,
and re-runs that reuse what is already written."""
import hashlib
import json
import os

import numpy as np
from PIL import Image

from conftest import reference_letterbox, run_detrq


def make_images(folder, names, seed=0):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i, name in enumerate(names):
        im = Image.fromarray(rng.integers(0, 256, (90 + 7 * i, 120 + 13 * i, 3), dtype=np.uint8))
        fmt = "PNG" if name.lower().endswith(".png") else "JPEG"
        im.save(folder / name, fmt)


def tensors(src, out, *args):
    r = run_detrq("--json", "tensors", "--input-dir", src, "--output-dir", out, *args)
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


def test_order_selection_and_manifest(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_images(src, ["b.JPG", "a.png", "c.jpeg", "d.PNG"])
    (src / "notes.txt").write_text("not an image")
    Image.new("RGB", (8, 8)).save(src / "e.gif")  # not an input format: ignored, not a failure
    r, s = tensors(src, out)
    assert r.returncode == 0, r.stderr
    assert (s["written"], s["reused"], s["failed"]) == (4, 0, 0)
    m = json.loads((out / "manifest.json").read_text())
    assert m["input_size"] == [512, 512]
    assert [t["source"] for t in m["tensors"]] == ["a.png", "b.JPG", "c.jpeg", "d.PNG"]
    assert [t["file"] for t in m["tensors"]] == [f"calib_{i:04d}.bin" for i in range(4)]
    for t in m["tensors"]:
        data = (out / t["file"]).read_bytes()
        assert len(data) == 3 * 512 * 512 * 4
        assert hashlib.sha256(data).hexdigest() == t["sha256"]
        assert hashlib.sha256((src / t["source"]).read_bytes()).hexdigest() == t["source_sha256"]
        _, scale, ox, oy, _ = reference_letterbox(src / t["source"])
        assert np.float32(t["scale"]) == np.float32(scale) and (t["offset_x"], t["offset_y"]) == (ox, oy)
    assert sorted(p.name for p in out.iterdir()) == [f"calib_{i:04d}.bin" for i in range(4)] + ["manifest.json"]


def test_bad_images_are_named_skipped_and_counted(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_images(src, ["a.jpg", "c.jpg", "e.png", "f.jpg"])
    good = (src / "a.jpg").read_bytes()
    (src / "b.jpg").write_bytes(good[: len(good) // 2])           # truncated JPEG: premature end of data
    (src / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)  # PNG signature, garbage after it
    (src / "g.jpeg").write_bytes(b"")                              # empty
    (src / "h.png").write_bytes((src / "a.jpg").read_bytes())      # a JPEG named .png: decoded as what it is
    r, s = tensors(src, out, "--count", 5)
    assert r.returncode == 0, r.stderr
    assert (s["written"], s["failed"]) == (5, 3)
    for bad in ("b.jpg", "d.png", "g.jpeg"):
        assert bad in r.stderr
    m = json.loads((out / "manifest.json").read_text())
    assert [t["source"] for t in m["tensors"]] == ["a.jpg", "c.jpg", "e.png", "f.jpg", "h.png"]


def test_fewer_than_count_is_a_failure(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_images(src, ["a.jpg", "b.png"])
    (src / "c.jpg").write_bytes(b"GIF89a not really")
    r, s = tensors(src, out, "--count", 3)
    assert r.returncode == 1
    assert s["written"] == 2 and s["failed"] == 1
    # The images' folder is what holds too few, and is named; the output folder is named as where the tensors are.
    assert r.stderr.splitlines()[-1] == f"detrq: error: {src}: 2 usable images, fewer than --count 3 (their tensors are in {out})"

    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"nope")
    r, s = tensors(bad, tmp_path / "out2")
    assert r.returncode == 1 and s["written"] == 0  # --count 0 with no usable image

    r = run_detrq("tensors", "--input-dir", tmp_path / "missing", "--output-dir", out)
    assert r.returncode == 6 and "missing" in r.stderr


def test_rerun_reuses_tensors_of_unchanged_sources(tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    make_images(src, ["a.jpg", "b.jpg", "c.png"])
    r, s = tensors(src, out)
    assert r.returncode == 0 and s["written"] == 3
    stamps = {p.name: os.stat(p).st_mtime_ns for p in out.glob("calib_*.bin")}
    (out / "calib_0001.bin.tmp.999.0.5").write_bytes(b"half a tensor")  # left by an interrupted run
    r, s = tensors(src, out)
    assert not (out / "calib_0001.bin.tmp.999.0.5").exists()
    assert r.returncode == 0 and (s["written"], s["reused"]) == (0, 3)
    assert stamps == {p.name: os.stat(p).st_mtime_ns for p in out.glob("calib_*.bin")}

    # A changed source and a damaged tensor are both redone; the untouched one is kept.
    make_images(src, ["b.jpg"], seed=7)
    with open(out / "calib_0002.bin", "r+b") as f:
        f.write(b"\xff\xff\xff\xff")
    r, s = tensors(src, out)
    assert r.returncode == 0 and (s["written"], s["reused"]) == (2, 1)
    m = json.loads((out / "manifest.json").read_text())
    for t in m["tensors"]:
        assert hashlib.sha256((out / t["file"]).read_bytes()).hexdigest() == t["sha256"]
        _, _, _, _, chw = reference_letterbox(src / t["source"])
        if t["source"].endswith(".png"):
            assert np.array_equal(np.fromfile(out / t["file"], "<f4").reshape(chw.shape), chw)
