"""Fixtures for the pipeline tests: a real `detrq hub-server` and a loopback image server standing in for
COCO, both on 127.0.0.1, plus helpers to run detrq and huggingface_hub against them."""
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest

DETRQ = os.environ["DETRQ_BIN"]
PYTHON = os.environ.get("DETRQ_PYTHON", sys.executable)
SOURCE = os.environ["DETRQ_SOURCE_DIR"]
WRITE_TOKEN = "hf_pipeline_write_0123456789"
MODEL = os.path.join(SOURCE, "models", "rfdetr_shapes.onnx")
CALIB = os.path.join(SOURCE, "data", "shapes_calib")
VAL = os.path.join(SOURCE, "data", "shapes_val")


def require_fixtures():
    if not (os.path.exists(MODEL) and os.path.isdir(CALIB) and os.path.exists(os.path.join(VAL, "instances.json"))):
        pytest.skip("the shipped model and images (models/rfdetr_shapes.onnx, data/shapes_*) have not landed")


class HubServer:
    def __init__(self, tmp_path):
        self.root = tmp_path / "hub-root"
        tokens = tmp_path / "tokens.txt"
        tokens.write_text(f"{WRITE_TOKEN} write\n")
        self.proc = subprocess.Popen([DETRQ, "hub-server", "--root", str(self.root), "--port", "0", "--tokens", str(tokens)],
                                     stdout=subprocess.PIPE, stderr=open(tmp_path / "hub-server.err", "w"), text=True)
        line = self.proc.stdout.readline()  # "serving ROOT on http://127.0.0.1:PORT"
        assert line.startswith("serving "), line
        self.endpoint = line.split()[-1]

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


@pytest.fixture
def hub(tmp_path):
    server = HubServer(tmp_path)
    yield server
    server.stop()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def image_server(tmp_path):
    """The shipped calibration images served under COCO-style names (000000000001.jpg, ...) on loopback,
    with the id list file that names them."""
    require_fixtures()
    root = tmp_path / "coco"
    root.mkdir()
    ids = []
    for i, name in enumerate(sorted(n for n in os.listdir(CALIB) if n.lower().endswith((".jpg", ".jpeg")))):
        shutil.copy(os.path.join(CALIB, name), root / f"{i + 1:012d}.jpg")
        ids.append(i + 1)
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("# served by the test\n" + "\n".join(map(str, ids)) + "\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", ids_file, len(ids)
    server.shutdown()
    server.server_close()


def hub_env(endpoint, tmp_path):
    env = dict(os.environ)
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / "hf-home"), "HF_TOKEN": WRITE_TOKEN,
                "HF_HUB_DISABLE_TELEMETRY": "1"})
    env.pop("HF_HUB_OFFLINE", None)
    return env


def run_detrq(*args, env=None, timeout=600, check=True):
    r = subprocess.run([DETRQ, *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    if check:
        assert r.returncode == 0, f"detrq {' '.join(map(str, args))} -> {r.returncode}\n{r.stderr}"
    return r


def make_qdq_model(tmp_path, count=4):
    """A Q/DQ model of the shipped one, calibrated by `detrq calibrate` on the first `count` images of
    data/shapes_calib (one more held out for its fidelity check): a few seconds."""
    require_fixtures()
    out = tmp_path / "rfdetr_shapes.qdq.onnx"
    run_detrq("calibrate", "--onnx", MODEL, "--images", CALIB, "--count", count, "--eval-count", 1,
              "--cache-path", tmp_path / "calibration.cache", "--qdq-out", out, "--threads", 2)
    return out


def val_subset(tmp_path, count):
    """The first `count` images of data/shapes_val as their own annotation file (a quick accuracy check)."""
    gt = json.load(open(os.path.join(VAL, "instances.json")))
    images = gt["images"][:count]
    keep = {im["id"] for im in images}
    gt = dict(gt, images=images, annotations=[a for a in gt["annotations"] if a["image_id"] in keep])
    path = tmp_path / "val_subset.json"
    path.write_text(json.dumps(gt))
    return path


def check_card_against_run(card, stderr, work, model=MODEL):
    """The model card's facts against sources outside the card code: the run's log (images the calibration
    statistics came from, the AP it measured), the calibration tensors actually written (all but those held
    out are used: the README's rule, `--eval-count` 8 by default and at most half of them), and the model's
    declared input and output shapes, read with onnx."""
    import onnx

    used = re.findall(r"statistics of \d+ tensors from (\d+) images", stderr)
    assert len(used) == 1, stderr
    used = int(used[0])
    tensors = [n for n in os.listdir(work / "calibration_tensors") if n.startswith("calib_") and n.endswith(".bin")]
    held_out = min(8, len(tensors) // 2)
    assert used == len(tensors) - held_out, (used, len(tensors))
    assert f" method on {used} images" in card, card

    graph = onnx.load(str(model), load_external_data=False).graph
    dims = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in [*graph.input, *graph.output]}
    for name in ("input", "dets", "labels"):
        assert f"`{name}` " in card, (name, card)
    assert f"float32 {dims['input']}" in card, (dims, card)
    assert f"`dets` {dims['dets']}" in card, (dims, card)
    assert f"`labels` {dims['labels']}" in card, (dims, card)

    ap = re.findall(r"AP FP32 (\d\.\d{4}), INT8 (\d\.\d{4})", stderr)
    if ap:
        assert len(ap) == 1, stderr
        assert f"| AP | {ap[0][0]} | {ap[0][1]} |" in card, card
    return used
