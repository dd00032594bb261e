"""Golden test: detrq's decode + letterbox + normalize against Pillow's Image.resize(BILINEAR) reference,
on the team's shared images (../shared/images, skipped when absent) and on generated edge-case images."""
import json
import os
import pathlib
import shutil

import numpy as np
import pytest
from PIL import Image

from conftest import reference_letterbox, run_detrq, tensor_to_gray_levels

SHARED_IMAGES = pathlib.Path(os.environ.get("DETRQ_SHARED_DIR", "../shared")) / "images"


def check_folder(input_dir, out_dir):
    r = run_detrq("tensors", "--input-dir", input_dir, "--output-dir", out_dir, "--json")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert manifest["input_size"] == [512, 512]
    checked = 0
    for entry in manifest["tensors"]:
        canvas, scale, ox, oy, chw = reference_letterbox(input_dir / entry["source"])
        got = tensor_to_gray_levels(out_dir / entry["file"])
        diff = np.abs(got - canvas.astype(np.int32))
        # The contract: at most 1 gray level apart before normalization, mean under 0.05.
        assert diff.max() <= 1, f"{entry['source']}: max diff {diff.max()}"
        assert diff.mean() < 0.05, f"{entry['source']}: mean diff {diff.mean()}"
        assert np.float32(entry["scale"]) == np.float32(scale), entry
        assert (entry["offset_x"], entry["offset_y"]) == (ox, oy), entry
        if entry["source"].lower().endswith(".png"):
            # No decoder difference is possible for PNG: the float tensor must be the reference's, bit for bit.
            raw = np.fromfile(out_dir / entry["file"], "<f4").reshape(chw.shape)
            assert np.array_equal(raw, chw), entry["source"]
        checked += 1
    return checked


@pytest.mark.skipif(not SHARED_IMAGES.is_dir(), reason="uses ../shared/images, absent here")
def test_shared_images_match_pillow(tmp_path):
    # Uses the team's shared reference folder (DETRQ_SHARED_DIR); the GIF there is not an input format.
    expected = sorted(p.name for p in SHARED_IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    assert check_folder(SHARED_IMAGES, tmp_path / "out") == len(expected)


def make_image(path, w, h, mode="RGB", seed=0, **save):
    rng = np.random.default_rng(seed)
    # Smooth gradients plus noise: both the antialiasing filter and exact sampling positions matter.
    yy, xx = np.ogrid[0:h, 0:w]
    base = ((xx * 255 // max(w - 1, 1) + yy * 97 // max(h - 1, 1)) % 256).astype(np.int16)
    noise = rng.integers(-40, 40, size=(h, w, 3), dtype=np.int16)
    rgb = np.clip(base[..., None] + noise, 0, 255).astype(np.uint8)
    im = Image.fromarray(rgb, "RGB")
    if mode == "RGBA":
        im.putalpha(Image.fromarray(rng.integers(0, 256, size=(h, w), dtype=np.uint8), "L"))
    elif mode != "RGB":
        im = im.convert(mode)
    im.save(path, **save)


GENERATED = [
    ("one_pixel.png", 1, 1, "RGB", {}),
    ("row_1x300.png", 300, 1, "RGB", {}),
    ("column_1x300.png", 1, 300, "RGB", {}),
    ("row_1x2000.png", 2000, 1, "RGB", {}),        # width truncates to 0: detrq keeps 1 pixel
    ("column_1x2000.png", 1, 2000, "RGB", {}),
    ("exact_512.png", 512, 512, "RGB", {}),
    ("odd_513x311.png", 513, 311, "RGB", {}),
    ("odd_37x999.png", 37, 999, "RGB", {}),
    ("odd_1023x3.png", 1023, 3, "RGB", {}),
    ("huge_4099x3001.jpg", 4099, 3001, "RGB", {"quality": 90}),
    ("gray_333x517.png", 333, 517, "L", {}),
    ("rgba_700x450.png", 700, 450, "RGBA", {}),
    ("palette_250x260.png", 250, 260, "P", {}),
    ("interlaced_301x199.png", 301, 199, "RGB", {"interlace": 1}),   # Pillow ignores it; still a valid PNG
    ("jpeg_640x427.JPG", 640, 427, "RGB", {"quality": 95}),
    ("jpeg_gray_257x129.jpeg", 257, 129, "L", {"quality": 85}),
    ("jpeg_progressive_800x600.jpg", 800, 600, "RGB", {"quality": 80, "progressive": True}),
    ("jpeg_420_1001x777.jpg", 1001, 777, "RGB", {"quality": 75, "subsampling": 2}),
]


def test_generated_images_match_pillow(tmp_path):
    src = tmp_path / "images"
    src.mkdir()
    for i, (name, w, h, mode, save) in enumerate(GENERATED):
        make_image(src / name, w, h, mode, seed=i, **save)
    assert check_folder(src, tmp_path / "out") == len(GENERATED)


def test_one_image_many_threads_same_bytes(tmp_path):
    """Tensors do not depend on how many threads made them."""
    src = tmp_path / "images"
    src.mkdir()
    for i in range(5):
        make_image(src / f"img_{i}.png", 300 + 37 * i, 200 + 11 * i, seed=i)
    a, b = tmp_path / "a", tmp_path / "b"
    assert run_detrq("tensors", "--input-dir", src, "--output-dir", a, "--threads", 1).returncode == 0
    assert run_detrq("tensors", "--input-dir", src, "--output-dir", b, "--threads", 4).returncode == 0
    for i in range(5):
        name = f"calib_{i:04d}.bin"
        assert (a / name).read_bytes() == (b / name).read_bytes()
    shutil.rmtree(a)
