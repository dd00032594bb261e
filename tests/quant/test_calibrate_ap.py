"""Issue 16's goal on trained models: `detrq calibrate` with its defaults puts at least 97% of the
MatMul/Conv/Gemm multiply-adds in INT8 and loses at most 0.1 AP on data/shapes_val (true labels,
pycocotools, the Q/DQ file run by onnxruntime), on models/rfdetr_shapes.onnx and on its outlier version
(tools/fixtures/make_outlier_model.py: 3 of 128 channels x64 per LayerNorm feeding MatMuls, folded back
into the weights, so FP32 is unchanged bit for bit). Without smoothing the outlier model loses more than
0.5 AP, which is what the smoothing is for. The multiply-adds are recounted here from the Q/DQ file's structure with
the shapes onnxruntime computes."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

DETRQ = os.environ["DETRQ_BIN"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "rfdetr_shapes.onnx")
CALIB = os.path.join(ROOT, "data", "shapes_calib")
VAL = os.path.join(ROOT, "data", "shapes_val")
FIXTURES = os.path.join(ROOT, "tools", "fixtures")
AP_BUDGET = 0.001  # 0.1 AP points
MIN_INT8_MAC_SHARE = 0.97

pytestmark = pytest.mark.skipif(not (os.path.exists(MODEL) and os.path.isdir(CALIB) and os.path.isdir(VAL)),
                                reason="models/rfdetr_shapes.onnx or data/shapes_* absent")


def coco_ap(model):
    r = subprocess.run([sys.executable, os.path.join(FIXTURES, "eval_onnx_coco.py"), "--model", str(model),
                        "--images", VAL, "--annotations", os.path.join(VAL, "instances.json"), "--json"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.splitlines()[0])["AP"]


def calibrate(model, tmp, name, *extra):
    out = tmp / f"{name}.qdq.onnx"
    table = tmp / f"{name}.json"
    r = subprocess.run([DETRQ, "--json", "calibrate", "--onnx", str(model), "--images", CALIB,
                        "--cache-path", str(tmp / f"{name}.cache"), "--qdq-out", str(out), "--table", str(table),
                        *extra], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return out, json.loads(r.stdout), json.loads(table.read_text())


def mac_node_shapes(fp32_path):
    """{node: (A shape, B shape, output shape)} of the Conv/MatMul/Gemm nodes, as onnxruntime computes them
    (onnx's shape inference leaves the attention reshapes of this export symbolic)."""
    model = onnx.load(str(fp32_path))
    g = model.graph
    inits = {i.name: list(i.dims) for i in g.initializer}
    nodes = [n for n in g.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    wanted = sorted({t for n in nodes for t in (n.input[0], n.input[1], n.output[0]) if t not in inits})
    known = {o.name for o in g.output}
    g.output.extend(helper.make_tensor_value_info(t, TensorProto.FLOAT, None) for t in wanted if t not in known)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((1, 3, 512, 512), np.float32)
    shapes = dict(inits)
    shapes.update({o.name: list(v.shape) for o, v in zip(sess.get_outputs(), sess.run(None, {"input": x}))})
    return {n.name: (shapes[n.input[0]], shapes[n.input[1]], shapes[n.output[0]]) for n in nodes}


def int8_mac_share(qdq_path, fp32_path):
    """Share of Conv/MatMul/Gemm multiply-adds whose two data inputs come from DequantizeLinear."""
    shapes = mac_node_shapes(fp32_path)
    g = onnx.load(str(qdq_path)).graph
    producer = {o: n for n in g.node for o in n.output}
    total = int8 = 0
    for n in g.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        a, b, out = shapes[n.name]
        depth = math.prod(b[1:]) if n.op_type == "Conv" else a[-1]
        macs = math.prod(out) * depth
        total += macs
        if all(i in producer and producer[i].op_type == "DequantizeLinear" for i in n.input[:2]):
            int8 += macs
    return int8 / total


@pytest.fixture(scope="module")
def outlier_model(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("outliers")
    path = tmp / "rfdetr_shapes_outliers.onnx"
    r = subprocess.run([sys.executable, os.path.join(FIXTURES, "make_outlier_model.py"), "--model", MODEL,
                        "--out", str(path), "--channels", "3", "--factor", "64"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert len(r.stdout.splitlines()) >= 12  # every backbone LayerNorm before q/k/v and fc1
    # Function-preserving: the same outputs, bit for bit, on an image-like input.
    x = np.random.default_rng(0).standard_normal((1, 3, 512, 512)).astype(np.float32)
    a = ort.InferenceSession(MODEL, providers=["CPUExecutionProvider"]).run(None, {"input": x})
    b = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})
    for p, q in zip(a, b):
        assert np.array_equal(p, q)
    return path


@pytest.fixture(scope="module")
def fp32_ap():
    return coco_ap(MODEL)


@pytest.mark.parametrize("which", ["shipped", "outliers"])
def test_defaults_put_97_percent_of_macs_in_int8_within_0_1_ap(which, outlier_model, fp32_ap, tmp_path):
    model = MODEL if which == "shipped" else outlier_model
    qdq, summary, table = calibrate(model, tmp_path, which)
    onnx.checker.check_model(onnx.load(str(qdq)), full_check=True)
    share = int8_mac_share(qdq, model)
    print(which, "INT8 MAC share", share, "reported", summary["int8_mac_share"])
    assert share >= MIN_INT8_MAC_SHARE
    assert summary["int8_mac_share"] == pytest.approx(share, abs=1e-6)
    assert table["int8_mac_share"] == pytest.approx(share, abs=1e-6)
    assert summary["smoothed_layernorms"] >= 12
    ap = coco_ap(qdq)
    print(which, "FP32 AP", fp32_ap, "INT8 AP", ap)
    assert ap >= fp32_ap - AP_BUDGET


def test_without_smoothing_the_outlier_model_loses_accuracy(outlier_model, fp32_ap, tmp_path):
    # A loose AP budget: at the default one the search returns the damaged backbone blocks to float and wins
    # the AP back (tests/quant/test_calibrate_sensitivity.py), which is not what this test is about.
    qdq, summary, _ = calibrate(outlier_model, tmp_path, "unsmoothed", "--smooth-alpha", "0", "--ap-budget", "100")
    assert summary["smoothed_layernorms"] == 0
    ap = coco_ap(qdq)
    print("unsmoothed outlier model: FP32 AP", fp32_ap, "INT8 AP", ap)
    assert ap < fp32_ap - 0.005
