"""Shared helpers for the vision tests: the detrq binary and the reference letterbox built from Pillow+numpy."""
import os
import subprocess

import numpy as np
from PIL import Image

DETRQ = os.environ.get("DETRQ_BIN", "")
MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)


def run_detrq(*args, timeout=300):
    return subprocess.run([DETRQ, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def reference_letterbox(path, size=512):
    """The reference preprocessing (Pillow): canvas uint8 HWC, scale, offsets, and the normalized CHW tensor."""
    im = Image.open(path).convert("RGB")  # alpha dropped, gray and palette expanded
    w, h = im.size
    scale = np.float32(min(np.float32(size) / np.float32(w), np.float32(size) / np.float32(h)))
    # trunc of float32 products; detrq keeps at least one pixel where Pillow would refuse a zero size.
    nw = max(1, int(np.float32(w) * scale))
    nh = max(1, int(np.float32(h) * scale))
    resized = im.resize((nw, nh), Image.BILINEAR)
    canvas = np.full((size, size, 3), 114, np.uint8)
    ox, oy = (size - nw) // 2, (size - nh) // 2
    canvas[oy:oy + nh, ox:ox + nw] = np.asarray(resized)
    chw = ((canvas.astype(np.float32) / np.float32(255) - MEAN) / STD).transpose(2, 0, 1)
    return canvas, float(scale), ox, oy, chw


def tensor_to_gray_levels(path, size=512):
    """Undoes the normalization of a detrq tensor file: HWC gray levels as integers."""
    t = np.fromfile(path, "<f4")
    assert t.size == 3 * size * size, f"{path}: {t.size} floats"
    hwc = t.reshape(3, size, size).transpose(1, 2, 0)
    return np.round((hwc * STD + MEAN) * 255).astype(np.int32)
