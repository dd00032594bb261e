"""A CMYK JPEG (Pillow writes Adobe's: an APP14 marker and inverted inks, as Photoshop does) is read as the
RGB picture Pillow, the reference decoder, makes of it (issue 18: it was called corrupt, exit 3)."""
import json

import numpy as np
from PIL import Image

from conftest import MEAN, STD, reference_letterbox, run_detrq


def cmyk_picture(path):
    """A 512x512 CMYK picture (no resize in the letterbox): flat blocks of known inks and a gradient."""
    ink = np.zeros((512, 512, 4), np.uint8)
    blocks = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0), (0, 0, 0, 255), (40, 120, 200, 30),
              (200, 10, 90, 100), (128, 128, 128, 0)]
    for i, b in enumerate(blocks):
        ink[:64, i * 64:(i + 1) * 64] = b
    y, x = np.mgrid[64:512, 0:512]
    ink[64:, :, 0] = x % 256
    ink[64:, :, 1] = y % 256
    ink[64:, :, 2] = (x + y) % 256
    ink[64:, :, 3] = (x // 4) % 128
    Image.fromarray(ink, "CMYK").save(path, "JPEG", quality=100, subsampling=0)
    return blocks


def test_a_cmyk_jpeg_decodes_to_pillows_rgb(tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    path = src / "cmyk.jpg"
    blocks = cmyk_picture(path)
    with Image.open(path) as im:
        assert im.mode == "CMYK"
        assert "adobe" in im.info  # the APP14 marker Pillow's libjpeg writes for CMYK
    r = run_detrq("--json", "tensors", "--input-dir", src, "--output-dir", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["written"] == 1
    chw = np.fromfile(tmp_path / "out" / "calib_0000.bin", dtype="<f4").reshape(3, 512, 512)
    rgb = (chw.transpose(1, 2, 0) * STD + MEAN) * 255.0
    canvas, scale, ox, oy, _ = reference_letterbox(path)
    assert (scale, ox, oy) == (1.0, 0, 0)
    diff = np.abs(rgb - canvas.astype(np.float32))
    assert diff.max() <= 1.01, diff.max()  # the same libjpeg samples; CMYK-to-RGB rounding may differ by one
    # And the flat blocks print as their inks say: R = (255 - C)(255 - K) / 255, ...
    for i, (c, m, y, k) in enumerate(blocks):
        centre = rgb[32, i * 64 + 32]
        expected = [(255 - v) * (255 - k) / 255 for v in (c, m, y)]
        assert np.allclose(centre, expected, atol=3), (i, centre, expected)
