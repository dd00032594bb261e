"""Small Q/DQ graphs of each pattern detrq fuses into int8 arithmetic, run by detrq and by onnxruntime:
the requantizing epilogue (QMatMulF absorbing bias, erf GELU, LayerScale, residual and the next
QuantizeLinear), Q/DQ attention (probabilities quantized inside AttentionSoftmax) and bad scales (exit 3)."""
import os
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_reference import as_defined  # tests/quant/ort_reference.py

DETRQ = os.environ["DETRQ_BIN"]
RNG = np.random.default_rng(11)


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def qdq(x, name, scale, zp, nodes, inits):
    """Appends QuantizeLinear -> DequantizeLinear of tensor x; returns the dequantized name."""
    inits += [init(f"{name}_s", np.float32(scale)), init(f"{name}_z", zp)]
    nodes += [helper.make_node("QuantizeLinear", [x, f"{name}_s", f"{name}_z"], [f"{name}_q"], name=f"{name}_Q"),
              helper.make_node("DequantizeLinear", [f"{name}_q", f"{name}_s", f"{name}_z"], [f"{name}_dq"],
                               name=f"{name}_DQ")]
    return f"{name}_dq"


def save(tmp, nodes, inits, inputs, outputs, name):
    graph = helper.make_graph(nodes, name, inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = str(tmp / f"{name}.onnx")
    onnx.save(model, path)
    return path


def run_both(tmp, path, feeds):
    args = [DETRQ, "run", path, "--output-dir", str(tmp / "out"), "--threads", "2", "--profile"]
    for name, value in feeds.items():
        np.save(tmp / f"{name}.npy", value)
        args += ["--input", f"{name}={tmp / f'{name}.npy'}"]
    r = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    calls = {f[0]: int(f[1]) for f in (line.split() for line in r.stdout.splitlines()) if len(f) == 4 and f[1].isdigit()}
    sess = as_defined(path)
    return calls, np.load(tmp / "out" / "y.npy"), sess.run(["y"], feeds)[0]


def within_a_step(got, want, scale):
    steps = np.abs(got.astype(np.float64) - want) / scale
    assert np.max(steps) <= 1.0001, np.max(steps)
    assert np.mean(steps > 0.5) <= 0.02  # float sums in another order flip a rounding now and then


@pytest.mark.parametrize("act_type,gelu,shared_bias", [(np.int8, True, True), (np.uint8, True, False),
                                                      (np.int8, False, False)])
def test_requantizing_epilogue_matches_onnxruntime_within_a_step(tmp_path, act_type, gelu, shared_bias):
    """shared_bias: the bias reaches the Add through an Identity, as exporters share weights."""
    k, n = 48, 40
    zp = act_type(3 if act_type == np.int8 else 128)
    nodes, inits = [], []
    x = qdq("x", "xq", 0.03, zp, nodes, inits)
    w = RNG.integers(-127, 128, size=(k, n)).astype(np.int8)
    inits += [init("w", w), init("w_s", (0.004 + 0.002 * RNG.random(n)).astype(np.float32)),
              init("w_z", np.zeros(n, np.int8)), init("bias", RNG.normal(size=n).astype(np.float32)),
              init("ls", (0.5 + RNG.random(n)).astype(np.float32)), init("sqrt2", np.float32(np.sqrt(2))),
              init("one", np.float32(1)), init("half", np.float32(0.5))]
    nodes += [helper.make_node("DequantizeLinear", ["w", "w_s", "w_z"], ["w_dq"], axis=1),
              helper.make_node("MatMul", [x, "w_dq"], ["mm"]),
              helper.make_node("Identity", ["bias"], ["bias_shared"]),  # how exporters share weights
              helper.make_node("Add", ["bias_shared" if shared_bias else "bias", "mm"], ["b"])]  # bias first
    last = "b"
    if gelu:
        nodes += [helper.make_node("Div", ["b", "sqrt2"], ["d"]), helper.make_node("Erf", ["d"], ["e"]),
                  helper.make_node("Add", ["e", "one"], ["e1"]), helper.make_node("Mul", ["b", "e1"], ["g"]),
                  helper.make_node("Mul", ["g", "half"], ["gelu"]), helper.make_node("Mul", ["gelu", "ls"], ["s"]),
                  helper.make_node("Add", ["s", "r"], ["res"])]
        last = "res"
    y_scale = 0.02
    y = qdq(last, "yq", y_scale, act_type(0 if act_type == np.int8 else 100), nodes, inits)
    nodes.append(helper.make_node("Identity", [y], ["y"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 37, k])]
    if gelu:
        inputs.append(helper.make_tensor_value_info("r", TensorProto.FLOAT, [2, 37, n]))
    path = save(tmp_path, nodes, inits, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], "ep")
    feeds = {"x": RNG.normal(size=(2, 37, k)).astype(np.float32)}
    if gelu:
        feeds["r"] = RNG.normal(size=(2, 37, n)).astype(np.float32)
    calls, got, want = run_both(tmp_path, path, feeds)
    # One int8 GEMM with everything in its epilogue: the input's QuantizeLinear is the only one left.
    assert calls.get("QMatMulF") == 1 and calls.get("QuantizeLinear") == 1, calls
    assert not any(op in calls for op in ("Erf", "Add", "Mul", "MatMul")), calls
    within_a_step(got, want, y_scale)


@pytest.mark.parametrize("v_quantized,prob_type", [(True, np.uint8), (True, np.int8), (False, np.uint8)])
def test_quantized_attention_matches_onnxruntime_within_a_step(tmp_path, v_quantized, prob_type):
    """Q, K, V and the probabilities quantized: both products in int8 (QAttentionSoftmax); V in float:
    the float AttentionSoftmax rounding the probabilities to their code grid."""
    heads, tokens, dims = 3, 70, 16
    nodes, inits = [], []
    q = qdq("q", "qq", 0.02, np.int8(3), nodes, inits)  # a zero point on Q: the GEMM's correction
    k = qdq("k", "kq", 0.02, np.int8(0), nodes, inits)
    v = qdq("v", "vq", 0.02, np.int8(0), nodes, inits) if v_quantized else "v"
    nodes += [helper.make_node("MatMul", [q, k], ["scores"]), helper.make_node("Softmax", ["scores"], ["p"], axis=-1)]
    p = qdq("p", "pq", 1.0 / 255 if prob_type == np.uint8 else 1.0 / 127, prob_type(0), nodes, inits)
    nodes.append(helper.make_node("MatMul", [p, v], ["o"]))
    y_scale = 0.004
    y = qdq("o", "oq", y_scale, np.int8(0), nodes, inits)
    nodes.append(helper.make_node("Identity", [y], ["y"]))
    f = TensorProto.FLOAT
    inputs = [helper.make_tensor_value_info("q", f, [1, heads, tokens, dims]),
              helper.make_tensor_value_info("k", f, [1, heads, dims, tokens]),
              helper.make_tensor_value_info("v", f, [1, heads, tokens, dims])]
    path = save(tmp_path, nodes, inits, inputs, [helper.make_tensor_value_info("y", f, None)], "attn")
    feeds = {"q": RNG.normal(size=(1, heads, tokens, dims)).astype(np.float32) * 1.5,
             "k": RNG.normal(size=(1, heads, dims, tokens)).astype(np.float32) * 1.5,
             "v": RNG.normal(size=(1, heads, tokens, dims)).astype(np.float32)}
    calls, got, want = run_both(tmp_path, path, feeds)
    fused = "QAttentionSoftmax" if v_quantized else "AttentionSoftmax"
    assert calls.get(fused) == 1 and "Softmax" not in calls and "MatMul" not in calls, calls
    within_a_step(got, want, y_scale)


@pytest.mark.parametrize("bad", [0.0, float("nan"), float("inf")])
def test_a_zero_nan_or_infinite_scale_is_an_error_naming_the_node(tmp_path, bad):
    nodes, inits = [], []
    y = qdq("x", "xq", bad, np.int8(0), nodes, inits)
    nodes.append(helper.make_node("Identity", [y], ["y"]))
    f = TensorProto.FLOAT
    path = save(tmp_path, nodes, inits, [helper.make_tensor_value_info("x", f, [4])],
                [helper.make_tensor_value_info("y", f, None)], "bad")
    np.save(tmp_path / "x.npy", np.ones(4, np.float32))
    r = subprocess.run([DETRQ, "run", path, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    assert "xq_Q" in r.stderr and "bad.onnx" in r.stderr and "scale 'xq_s'" in r.stderr, r.stderr
