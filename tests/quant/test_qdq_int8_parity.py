"""The int8 MatMul and Conv paths on real Q/DQ models: models/rfdetr_shapes.onnx (a trained RF-DETR)
calibrated by detrq on data/shapes_calib, run by detrq (Q/DQ MatMuls and Convs fused to int8 arithmetic) and
by onnxruntime on a held-out image. With the decoder policy (the backbone float, as detrq's default was before
it counted multiply-adds) every dequantized activation of the whole graph stays within one quantization step
of onnxruntime's. With the backbone in INT8 too (today's default), rounding differences of
one step compound over dozens of layers and the TopK then picks other queries, so there each fused layer is
checked on identical inputs (the layers cut out of the model). The CPU engine built from the Q/DQ model
carries the int8 nodes and detects what the ONNX does."""
import json
import os
import subprocess

import numpy as np
import onnx
import onnx.utils
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_reference import as_defined  # tests/quant/ort_reference.py

DETRQ = os.environ["DETRQ_BIN"]
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODEL = os.path.join(ROOT, "models", "rfdetr_shapes.onnx")
CALIB = os.path.join(ROOT, "data", "shapes_calib")
VAL = os.path.join(ROOT, "data", "shapes_val")
# The backbone's linear layers and the projector's convs in INT8 too (bench/RESULTS.md: -0.13 AP).
BACKBONE = [a for p in ("*backbone*/query/*", "*backbone*/key/*", "*backbone*/value/*", "*backbone*/output/dense/*",
                        "*backbone*/mlp/*", "*projector*") for a in ("--include", p)] + ["--float-attention-and-stem"]
# Only the decoder and heads in INT8.
DECODER = ["--float-attention-and-stem", "--exclude", "*backbone*"]


def detrq(*args, timeout=300):
    r = subprocess.run([DETRQ, *args], capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


@pytest.fixture(scope="module")
def qdq(tmp_path_factory):
    if not (os.path.exists(MODEL) and os.path.isdir(CALIB) and os.path.isdir(VAL)):
        pytest.skip("models/rfdetr_shapes.onnx or data/shapes_* absent")
    tmp = tmp_path_factory.mktemp("qdq")
    for name, extra in (("default", DECODER), ("backbone", BACKBONE)):
        detrq("calibrate", "--onnx", MODEL, "--images", CALIB, "--count", "6", "--cache-path", str(tmp / "c.cache"),
              "--qdq-out", str(tmp / f"{name}.onnx"), *extra)
    val = tmp / "val"
    val.mkdir()
    image = sorted(f for f in os.listdir(VAL) if f.endswith(".jpg"))[3]
    os.symlink(os.path.join(VAL, image), val / image)
    detrq("tensors", "--input-dir", str(val), "--output-dir", str(tmp / "tensors"))
    x = np.fromfile(tmp / "tensors" / "calib_0000.bin", dtype=np.float32).reshape(1, 3, 512, 512)
    np.save(tmp / "x.npy", x)
    return tmp, x, os.path.join(VAL, image)


def fused_layers(model):
    """MatMul and Conv nodes whose activation and weight inputs both come from DequantizeLinear."""
    inits = {i.name for i in model.graph.initializer}
    producers = {o: n for n in model.graph.node for o in n.output}
    out = []
    for node in model.graph.node:
        dq = [producers.get(i) for i in node.input[:2]]
        if node.op_type in ("MatMul", "Conv") and all(p is not None and p.op_type == "DequantizeLinear" for p in dq) \
                and dq[0].input[0] not in inits and dq[1].input[0] in inits:
            out.append((node, producers[dq[0].input[0]]))  # with the QuantizeLinear before it
    return out


def profile_calls(stdout):
    return {f[0]: int(f[1]) for f in (line.split() for line in stdout.splitlines()) if len(f) == 4 and f[1].isdigit()}


def test_decoder_policy_activations_stay_within_a_step_or_two_of_onnxruntime(qdq):
    tmp, x, _ = qdq
    q = onnx.load(str(tmp / "default.onnx"))
    inits = {i.name: i for i in q.graph.initializer}
    layers = fused_layers(q)
    assert len(layers) >= 20
    scales = {}
    for node in list(q.graph.node):
        if node.op_type == "DequantizeLinear" and node.input[0] not in inits:
            # Exposed under a file-friendly name; the MatMuls after it are fused all the same.
            name = f"dq_{len(scales)}"
            scales[name] = float(numpy_helper.to_array(inits[node.input[1]]))
            q.graph.node.append(helper.make_node("Identity", [node.output[0]], [name]))
            q.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    onnx.save(q, str(tmp / "default_debug.onnx"))
    out_dir = tmp / "detrq_out"
    r = detrq("run", str(tmp / "default_debug.onnx"), "--input", f"input={tmp / 'x.npy'}", "--output-dir", str(out_dir),
              "--threads", "2", "--profile")
    assert profile_calls(r.stdout).get("QMatMulF") == len(layers), r.stdout  # every Q/DQ MatMul ran in int8
    sess = as_defined(str(tmp / "default_debug.onnx"))
    expected = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": x})))
    for name, scale in scales.items():
        got = np.load(out_dir / f"{name}.npy")
        # Float sums in another order flip a rounding now and then (about 1% of the codes here differ by one
        # step); a flipped input code moves the next layer's output by its weight, so a run of the whole
        # model can drift a second step in a rare code. Layers fed the same inputs are exact (next test).
        steps = np.abs(got - expected[name]) / scale
        assert np.max(steps) <= 2.0001, name
        assert np.mean(steps > 1.0001) <= 1e-4, name
    assert np.max(np.abs(np.load(out_dir / "dets.npy") - expected["dets"])) < 2e-2
    labels, ref = np.load(out_dir / "labels.npy"), expected["labels"]
    finite = np.isfinite(ref)
    assert np.array_equal(np.isfinite(labels), finite)
    assert np.max(np.abs(labels[finite] - ref[finite])) < 0.1


def test_backbone_in_int8_every_fused_layer_matches_onnxruntime_on_the_same_inputs(qdq):
    tmp, x, _ = qdq
    path = str(tmp / "backbone.onnx")
    q = onnx.load(path)
    layers = fused_layers(q)
    assert sum(n.op_type == "MatMul" for n, _ in layers) >= 40 and sum(n.op_type == "Conv" for n, _ in layers) >= 4
    r = detrq("run", path, "--input", f"input={tmp / 'x.npy'}", "--output-dir", str(tmp / "full"), "--threads", "2",
              "--profile")
    calls = profile_calls(r.stdout)
    assert calls.get("QMatMulF", 0) + calls.get("QConvF", 0) == len(layers), r.stdout
    # The float inputs of every fused layer's QuantizeLinear, from onnxruntime's run of the whole model.
    inputs = sorted({quant.input[0] for _, quant in layers})
    probe = onnx.load(path)
    for name in inputs:
        probe.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    sess = as_defined(probe.SerializeToString())
    values = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": x})))
    # The layers alone: QuantizeLinear -> DequantizeLinear -> MatMul/Conv <- DequantizeLinear(W), fed those values.
    outputs = [n.output[0] for n, _ in layers]
    onnx.utils.extract_model(path, str(tmp / "layers.onnx"), inputs, outputs)
    args = ["--json", "run", str(tmp / "layers.onnx"), "--output-dir", str(tmp / "layers_out"), "--threads", "2"]
    for i, name in enumerate(inputs):
        np.save(tmp / f"in_{i}.npy", values[name])
        args += ["--input", f"{name}={tmp / f'in_{i}.npy'}",
                 "--input-shape", f"{name}={'x'.join(str(d) for d in values[name].shape)}"]
    r = detrq(*args)
    files = {name: o["file"] for name, o in json.loads(r.stdout)["outputs"].items()}
    layer_sess = as_defined(str(tmp / "layers.onnx"))
    expected = dict(zip(outputs, layer_sess.run(outputs, {n: values[n] for n in inputs})))
    for (node, _), name in zip(layers, outputs):
        got, ref = np.load(files[name]), expected[name]
        # Same int8 operands; only how the products are summed and scaled differs.
        assert np.max(np.abs(got - ref)) <= 1e-4 * max(1.0, float(np.max(np.abs(ref)))), node.name


def test_cpu_engine_of_a_qdq_model_keeps_the_int8_nodes_and_detects_the_same(qdq):
    tmp, _, image = qdq
    engine = tmp / "backbone.engine"
    detrq("build-engine", "--qdq", str(tmp / "backbone.onnx"), "--output", str(engine), "--backend", "cpu")
    assert b"QMatMulF" in engine.read_bytes() and b"QConvF" in engine.read_bytes()
    from_engine = json.loads(detrq("detect", "--engine", str(engine), image, "--threshold", "0.3").stdout)
    from_onnx = json.loads(detrq("detect", "--onnx", str(tmp / "backbone.onnx"), image, "--threshold", "0.3").stdout)
    boxes = lambda d: [(o["label"], round(o["score"], 3)) for o in d[0]["detections"]]  # noqa: E731
    assert boxes(from_engine) == boxes(from_onnx)
    assert len(boxes(from_onnx)) >= 1
