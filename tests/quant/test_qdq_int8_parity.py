"""The int8 MatMul path on a real Q/DQ model: models/rfdetr_shapes.onnx (a trained RF-DETR) calibrated by
detrq on data/shapes_calib, run by detrq (its Q/DQ MatMuls fused to int8 arithmetic) and by onnxruntime on
a held-out image: every dequantized activation within one quantization step, the outputs close; the CPU
engine built from that model carries the int8 nodes and detects what the ONNX does."""
import json
import os
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

DETRQ = os.environ["DETRQ_BIN"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "rfdetr_shapes.onnx")
CALIB = os.path.join(ROOT, "data", "shapes_calib")
VAL = os.path.join(ROOT, "data", "shapes_val")


def detrq(*args, timeout=300):
    r = subprocess.run([DETRQ, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def qdq(tmp_path_factory):
    if not (os.path.exists(MODEL) and os.path.isdir(CALIB) and os.path.isdir(VAL)):
        pytest.skip("models/rfdetr_shapes.onnx or data/shapes_* absent")
    tmp = tmp_path_factory.mktemp("qdq")
    detrq("calibrate", "--onnx", MODEL, "--images", CALIB, "--count", "6", "--cache-path", str(tmp / "c.cache"),
          "--qdq-out", str(tmp / "q.onnx"))
    val = tmp / "val"
    val.mkdir()
    image = sorted(f for f in os.listdir(VAL) if f.endswith(".jpg"))[3]
    os.symlink(os.path.join(VAL, image), val / image)
    detrq("tensors", "--input-dir", str(val), "--output-dir", str(tmp / "tensors"))
    x = np.fromfile(tmp / "tensors" / "calib_0000.bin", dtype=np.float32).reshape(1, 3, 512, 512)
    return tmp, x, os.path.join(VAL, image)


def test_int8_matmuls_match_onnxruntime_within_one_step(qdq):
    tmp, x, _ = qdq
    q = onnx.load(str(tmp / "q.onnx"))
    inits = {i.name: i for i in q.graph.initializer}
    producers = {o: n for n in q.graph.node for o in n.output}
    scales = {}
    fused_candidates = 0
    for node in list(q.graph.node):
        if node.op_type == "DequantizeLinear" and node.input[0] not in inits:
            # Exposed under a file-friendly name; the MatMuls after it are fused all the same.
            name = f"dq_{len(scales)}"
            scales[name] = float(numpy_helper.to_array(inits[node.input[1]]))
            q.graph.node.append(helper.make_node("Identity", [node.output[0]], [name]))
            q.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
        if node.op_type == "MatMul" and all(producers.get(i) is not None and producers[i].op_type == "DequantizeLinear"
                                            for i in node.input):
            fused_candidates += 1
    assert len(scales) >= 10 and fused_candidates >= 10
    onnx.save(q, str(tmp / "q_debug.onnx"))
    np.save(tmp / "x.npy", x)
    out_dir = tmp / "detrq_out"
    r = detrq("run", str(tmp / "q_debug.onnx"), "--input", f"input={tmp / 'x.npy'}", "--output-dir", str(out_dir),
              "--threads", "2", "--profile")
    fused = [line.split() for line in r.stdout.splitlines() if line.startswith("QMatMulF ")]
    assert fused and int(fused[0][1]) == fused_candidates, r.stdout  # every Q/DQ MatMul ran in int8
    sess = ort.InferenceSession(str(tmp / "q_debug.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    expected = dict(zip(names, sess.run(None, {"input": x})))
    for name, scale in scales.items():
        got = np.load(out_dir / f"{name}.npy")
        assert np.max(np.abs(got - expected[name])) <= scale * 1.0001, name
    dets = np.load(out_dir / "dets.npy")
    assert np.max(np.abs(dets - expected["dets"])) < 2e-2
    labels, ref = np.load(out_dir / "labels.npy"), expected["labels"]
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(labels), finite)
    assert np.max(np.abs(labels[finite] - ref[finite])) < 0.1


def test_cpu_engine_of_a_qdq_model_keeps_the_int8_nodes_and_detects_the_same(qdq):
    tmp, _, image = qdq
    engine = tmp / "q.engine"
    detrq("build-engine", "--qdq", str(tmp / "q.onnx"), "--output", str(engine), "--backend", "cpu")
    assert b"QMatMulF" in engine.read_bytes()
    from_engine = json.loads(detrq("detect", "--engine", str(engine), image, "--threshold", "0.3").stdout)
    from_onnx = json.loads(detrq("detect", "--onnx", str(tmp / "q.onnx"), image, "--threshold", "0.3").stdout)
    boxes = lambda d: [(o["label"], round(o["score"], 3)) for o in d[0]["detections"]]  # noqa: E731
    assert boxes(from_engine) == boxes(from_onnx)
    assert len(boxes(from_onnx)) >= 1
