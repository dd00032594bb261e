"""The real RF-DETR small graph with random weights: calibration on real images gives it a policy with
the defaults (nearly all multiply-adds in INT8; with random weights there is no meaningful AP to gate
on: tests/quant/test_calibrate_ap.py does that on the trained model), the SQNR against FP32 on held-out
images is reported, and the Q/DQ model passes onnx.checker, is about 4x smaller where weights were
quantized, and runs in onnxruntime.
Uses ../shared (models/rfdetr_small_random.onnx, images/); skips when it is absent."""
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

DETRQ = os.environ["DETRQ_BIN"]
SHARED = Path(os.environ.get("DETRQ_SHARED_DIR", ""))
MODEL = SHARED / "models" / "rfdetr_small_random.onnx"

pytestmark = pytest.mark.skipif(not MODEL.exists(), reason="needs ../shared/models/rfdetr_small_random.onnx")


def test_rfdetr_small_random_calibrates_and_gets_a_policy(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((SHARED / "images").iterdir()):
        if p.suffix.lower() in (".jpg", ".jpeg", ".png"):
            shutil.copy(p, images / p.name)
    n = len(list(images.iterdir()))
    r = subprocess.run([DETRQ, "--json", "calibrate", "--onnx", str(MODEL), "--images", str(images),
                        "--count", str(n - 3), "--eval-count", "3", "--cache-path", str(tmp_path / "c.cache"),
                        "--qdq-out", str(tmp_path / "q.onnx"), "--table", str(tmp_path / "calibration.json")],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    print(summary)
    assert summary["heldout_images"] == 3
    # Information only: with the backbone in INT8 the TopK reorders queries of this random-weight model.
    assert set(summary["sqnr_db"]) == {"dets", "labels"}
    assert set(summary["identical"]) == {"dets", "labels"}
    assert summary["int8_mac_share"] >= 0.97
    assert summary["smoothed_layernorms"] >= 12

    q = onnx.load(str(tmp_path / "q.onnx"))
    onnx.checker.check_model(q)
    # Every quantized weight is stored in int8: the file shrinks by ~3 bytes per quantized weight value.
    quantized_values = sum(int(np.prod(i.dims)) for i in q.graph.initializer
                           if i.data_type == onnx.TensorProto.INT8 and i.name.endswith("_quantized"))
    assert quantized_values > 1_000_000
    shrink = os.path.getsize(MODEL) - os.path.getsize(tmp_path / "q.onnx")
    assert shrink >= 0.7 * 3 * quantized_values
    sess = ort.InferenceSession(str(tmp_path / "q.onnx"), providers=["CPUExecutionProvider"])
    assert [o.name for o in sess.get_outputs()] == ["dets", "labels"]
