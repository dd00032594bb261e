"""`detrq run` and `detrq inspect` as a user drives them: every input format (.npy of each dtype, .pb
TensorProto, raw float32 .bin), outputs as DIR/<name>.npy, --repeat, --profile, --json, and the errors
for bad files and inputs. Graphs are built here with the onnx package; where they need kernels the
results are compared with onnxruntime."""
import json
import os
import re
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

DETRQ = os.environ["DETRQ_BIN"]


def detrq(*args, timeout=120):
    return subprocess.run([DETRQ, *map(str, args)], capture_output=True, text=True, timeout=timeout)


def save_model(path, nodes, inputs, outputs, initializers=(), opset=17):
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    # IR 8: what onnxruntime 1.30 and the RF-DETR exports use (onnx 1.23 would write a newer one).
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.save(model, str(path))
    return path


DTYPES = {
    "float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "float16": TensorProto.FLOAT16,
    "int8": TensorProto.INT8, "uint8": TensorProto.UINT8, "int32": TensorProto.INT32,
    "int64": TensorProto.INT64, "bool": TensorProto.BOOL,
}


@pytest.fixture
def passthrough(tmp_path):
    """A graph without nodes: each output is an input, so no kernel is needed."""
    ins = [helper.make_tensor_value_info(f"in_{d}", t, [2, 3]) for d, t in DTYPES.items()]
    outs = [helper.make_tensor_value_info(f"in_{d}", t, [2, 3]) for d, t in DTYPES.items()]
    return save_model(tmp_path / "passthrough.onnx", [], ins, outs)


def sample(dtype, rng):
    if dtype == "bool":
        return rng.integers(0, 2, (2, 3)).astype(bool)
    if dtype.startswith("float"):
        return rng.standard_normal((2, 3)).astype(dtype)
    return rng.integers(-100 if dtype.startswith("int") else 0, 100, (2, 3)).astype(dtype)


def test_npy_and_pb_inputs_of_every_dtype_round_trip(tmp_path, passthrough):
    rng = np.random.default_rng(0)
    args, want = [], {}
    for i, d in enumerate(DTYPES):
        a = sample(d, rng)
        want[f"in_{d}"] = a
        if i % 2:
            f = tmp_path / f"{d}.npy"
            np.save(f, a)
        else:
            f = tmp_path / f"{d}.pb"
            f.write_bytes(numpy_helper.from_array(a).SerializeToString())
        args += ["--input", f"in_{d}={f}"]
    out = tmp_path / "out"
    r = detrq("run", passthrough, *args, "--output-dir", out)
    assert r.returncode == 0, r.stderr
    for name, a in want.items():
        got = np.load(out / f"{name}.npy")
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)
        assert f"{name} {a.dtype}[2, 3] -> " in r.stdout


def test_raw_bin_input_takes_the_model_shape(tmp_path):
    model = save_model(tmp_path / "m.onnx", [], [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 5])])
    a = np.arange(60, dtype=np.float32).reshape(1, 3, 4, 5)
    (tmp_path / "x.bin").write_bytes(a.tobytes())
    r = detrq("run", model, "--input", f"x={tmp_path / 'x.bin'}", "--output-dir", tmp_path / "o")
    assert r.returncode == 0, r.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "x.npy"), a)
    (tmp_path / "short.bin").write_bytes(a.tobytes()[:-4])
    r = detrq("run", model, "--input", f"x={tmp_path / 'short.bin'}", "--output-dir", tmp_path / "o")
    assert r.returncode == 3
    assert "holds 236 bytes, but raw float32[1, 3, 4, 5] needs 240" in r.stderr


def test_wrong_input_shape_dtype_and_name_are_clear_errors(tmp_path, passthrough):
    good = []
    for d in DTYPES:
        if d == "float32":
            continue
        np.save(tmp_path / f"{d}.npy", sample(d, np.random.default_rng(1)))
        good += ["--input", f"in_{d}={tmp_path / f'{d}.npy'}"]
    np.save(tmp_path / "wrong_shape.npy", np.zeros((3, 2), np.float32))
    r = detrq("run", passthrough, *good, "--input", f"in_float32={tmp_path / 'wrong_shape.npy'}", "--output-dir", tmp_path)
    assert r.returncode == 3
    assert "input 'in_float32': has shape [3, 2], the model expects [2, 3]" in r.stderr
    np.save(tmp_path / "wrong_dtype.npy", np.zeros((2, 3), np.float64))
    r = detrq("run", passthrough, *good, "--input", f"in_float32={tmp_path / 'wrong_dtype.npy'}", "--output-dir", tmp_path)
    assert r.returncode == 3
    assert "has dtype float64, the model expects float32" in r.stderr
    r = detrq("run", passthrough, *good, "--input", f"nope={tmp_path / 'wrong_dtype.npy'}", "--output-dir", tmp_path)
    assert r.returncode == 2
    assert "'nope' is not an input of the model" in r.stderr
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'")
    r = detrq("run", passthrough, *good, "--input", f"in_float32={tmp_path / 'bad.npy'}", "--output-dir", tmp_path)
    assert r.returncode == 3 and "bad.npy" in r.stderr


def test_corrupt_and_truncated_models_are_refused(tmp_path, passthrough):
    data = passthrough.read_bytes()
    (tmp_path / "truncated.onnx").write_bytes(data[: len(data) // 2])
    for name in ("truncated.onnx",):
        for cmd in ("inspect", "run"):
            extra = ["--input", "x=y.npy", "--output-dir", tmp_path] if cmd == "run" else []
            r = detrq(cmd, tmp_path / name, *extra)
            assert r.returncode == 3, (cmd, r.stderr)
            assert r.stderr.startswith("detrq: error: ") and name in r.stderr


def test_unsupported_operators_listed_once(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])
    model = save_model(tmp_path / "m.onnx", [helper.make_node("NoSuchOpA", ["x"], ["a"]),
                                             helper.make_node("NoSuchOpB", ["a"], ["y"])], [x], [y])
    np.save(tmp_path / "x.npy", np.zeros(2, np.float32))
    r = detrq("run", model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path)
    assert r.returncode == 4
    assert "2 unsupported operators: NoSuchOpA (domain ai.onnx, opset 17), NoSuchOpB (domain ai.onnx, opset 17)" in r.stderr
    r = detrq("inspect", model)
    assert r.returncode == 0
    assert "unavailable" in r.stdout and "NoSuchOpA" in r.stdout


def test_repeat_profile_and_json(tmp_path, passthrough):
    args = []
    for d in DTYPES:
        np.save(tmp_path / f"{d}.npy", sample(d, np.random.default_rng(2)))
        args += ["--input", f"in_{d}={tmp_path / f'{d}.npy'}"]
    r = detrq("run", passthrough, *args, "--output-dir", tmp_path / "o", "--repeat", "5", "--profile")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^latency median=\d+\.\d+ ms", r.stdout, re.M), r.stdout
    assert "operator" in r.stdout and "total" in r.stdout
    r = detrq("--json", "run", passthrough, *args, "--output-dir", tmp_path / "o", "--repeat", "3")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["latency_ms"]["runs"] == 3 and set(j["outputs"]) == {f"in_{d}" for d in DTYPES}


def test_inspect_reports_the_plan(tmp_path):
    model = save_model(tmp_path / "m.onnx", [],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                       [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
                       [numpy_helper.from_array(np.zeros((4, 4), np.float32), "unused_w")])
    r = detrq("inspect", model)
    assert r.returncode == 0
    assert "parameters: 16" in r.stdout
    assert "has no static shape" in r.stdout  # symbolic batch: no plan without a shape
    r = detrq("--json", "inspect", model, "--input-shape", "x=2x8")
    assert r.returncode == 0, r.stderr
    j = json.loads(r.stdout)
    assert j["planned"] is True
    assert j["inputs"][0]["shape"] == [2, 8]
    assert j["parameters"] == 16 and j["planned_peak_bytes"] == 0


def test_inspect_counts_the_flops_of_fused_operators(tmp_path):
    """The plan holds com.detrq FusedMatMul and AttentionSoftmax (K read through its Transpose): each
    counts as the products it replaces, not as one operation per output value."""
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((16, 48)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(48).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y1"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y2"])]
    qkv = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 8, 4]) for n in "qkv"]
    model = save_model(tmp_path / "fused.onnx", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16]),
                                                         *qkv],
                       [helper.make_tensor_value_info("y1", TensorProto.FLOAT, None),
                        helper.make_tensor_value_info("y2", TensorProto.FLOAT, None)], [w, b])
    j = json.loads(detrq("--json", "inspect", model).stdout)
    assert j["planned_nodes"] == 2, j  # both patterns fused
    # x @ w: 2 * 8 * 48 * 16; per head (2): Q K^T 2 * 8 * 8 * 4 and P V 2 * 8 * 4 * 8.
    assert j["flops"] == 2 * 8 * 48 * 16 + 2 * (2 * 8 * 8 * 4 + 2 * 8 * 4 * 8)


def test_inspect_passes_says_what_each_pass_changed(tmp_path):
    """--passes lists every planning pass in order with what it changed: here the bias Add is fused
    into the MatMul, and the attention's Softmax, second MatMul and K's Transpose into one node."""
    rng = np.random.default_rng(5)
    w = numpy_helper.from_array(rng.standard_normal((16, 48)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(48).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"]), helper.make_node("Add", ["h", "b"], ["y1"]),
             helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
             helper.make_node("MatMul", ["q", "kt"], ["s"]), helper.make_node("Softmax", ["s"], ["p"], axis=-1),
             helper.make_node("MatMul", ["p", "v"], ["y2"]), helper.make_node("Neg", ["x"], ["unused"])]
    qkv = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 2, 8, 4]) for n in "qkv"]
    model = save_model(tmp_path / "fused.onnx", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 8, 16]),
                                                         *qkv],
                       [helper.make_tensor_value_info("y1", TensorProto.FLOAT, None),
                        helper.make_tensor_value_info("y2", TensorProto.FLOAT, None)], [w, b])
    r = detrq("--json", "inspect", "--passes", model)
    assert r.returncode == 0, r.stderr
    passes = {p["pass"]: p for p in json.loads(r.stdout)["passes"]}
    assert passes["fuse-matmul-epilogue"]["rewritten"] == 1 and passes["fuse-matmul-epilogue"]["fused"] == 1
    assert passes["fuse-attention"]["rewritten"] == 1 and passes["fuse-attention"]["fused"] == 3
    assert passes["fuse-attention"]["nodes_before"] - passes["fuse-attention"]["nodes_after"] == 3
    assert passes["fold-constants"]["removed"] == 0
    text = detrq("inspect", "--passes", model).stdout
    order = [line.split()[0] for line in text.split("passes (")[1].splitlines()[1:]]
    assert order[:4] == ["check-internal-domain", "check-qdq-scales", "fold-weight-quantization", "remove-dead-nodes"], text
    assert "fuse-attention" in order and order[-1] == "remove-dead-steps"
    assert "passes (" not in detrq("inspect", model).stdout


def test_inspect_passes_names_the_qdq_layers_left_in_float(tmp_path):
    """A Q/DQ pattern the int8 kernels do not cover (a weight with a zero point of 1, an activation x
    activation product outside attention) runs in float on the dequantized tensors, and --passes says so
    per layer with the reason; the covered MatMul becomes QMatMulF and gets no note. The outputs are the
    ONNX definition's (onnxruntime without graph optimizations)."""
    import onnxruntime as ort

    rng = np.random.default_rng(8)
    codes = lambda shape, name: numpy_helper.from_array(rng.integers(-127, 128, shape).astype(np.int8), name)
    scalar = lambda v, name, dt=np.float32: numpy_helper.from_array(np.array(v, dt), name)
    inits = [codes((16, 16), "w_ok"), codes((16, 16), "w_zp"), scalar(0.02, "ws"), scalar(0.05, "xs"),
             scalar(0, "xz", np.int8), scalar(1, "wz", np.int8), scalar(0.1, "hs"), scalar(0, "hz", np.int8)]
    nodes = [helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
             helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
             helper.make_node("DequantizeLinear", ["w_ok", "ws"], ["wokd"]),
             helper.make_node("MatMul", ["xd", "wokd"], ["h"], name="covered"),
             helper.make_node("DequantizeLinear", ["w_zp", "ws", "wz"], ["wzpd"]),
             helper.make_node("MatMul", ["xd", "wzpd"], ["g"], name="zero_point_one"),
             helper.make_node("QuantizeLinear", ["h", "hs", "hz"], ["hq"]),
             helper.make_node("DequantizeLinear", ["hq", "hs", "hz"], ["hd"]),
             helper.make_node("Transpose", ["xq"], ["xqt"], perm=[1, 0]),
             helper.make_node("DequantizeLinear", ["xqt", "xs", "xz"], ["xtd"]),
             helper.make_node("MatMul", ["hd", "xtd"], ["y"], name="two_activations")]
    model = save_model(tmp_path / "qdq.onnx", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [8, 16])],
                       [helper.make_tensor_value_info("y", TensorProto.FLOAT, [8, 8]),
                        helper.make_tensor_value_info("g", TensorProto.FLOAT, [8, 16])], inits)
    r = detrq("--json", "inspect", "--passes", model)
    assert r.returncode == 0, r.stderr
    notes = {p["pass"]: p["notes"] for p in json.loads(r.stdout)["passes"]}["report-unfused-qdq"]
    assert len(notes) == 2, notes
    assert any("'zero_point_one'" in n and "zero point is not 0" in n for n in notes), notes
    assert any("'two_activations'" in n and "both inputs are computed" in n for n in notes), notes
    assert not any("'covered'" in n for n in notes), notes
    text = detrq("inspect", "--passes", model).stdout
    assert "MatMul 'zero_point_one' stays float on dequantized inputs" in text, text
    x = rng.standard_normal((8, 16)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = detrq("run", model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    want = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"]).run(None, {"x": x})
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"), want[0], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(np.load(tmp_path / "out" / "g.npy"), want[1], rtol=1e-5, atol=1e-5)


# Small graphs that need kernels; each is compared with onnxruntime once detrq can run it.
def mlp_model(tmp_path):
    rng = np.random.default_rng(3)
    w1 = numpy_helper.from_array(rng.standard_normal((16, 32)).astype(np.float32), "w1")
    b1 = numpy_helper.from_array(rng.standard_normal(32).astype(np.float32), "b1")
    shape = numpy_helper.from_array(np.array([2, 4, 8, 4], np.int64), "shape")
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["h"]), helper.make_node("Add", ["h", "b1"], ["hb"]),
             helper.make_node("Relu", ["hb"], ["r"]), helper.make_node("Reshape", ["r", "shape"], ["rs"]),
             helper.make_node("Transpose", ["rs"], ["t"], perm=[0, 2, 1, 3]),
             helper.make_node("Softmax", ["t"], ["y"], axis=-1)]
    return save_model(tmp_path / "mlp.onnx", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4, 16])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w1, b1, shape]), (2, 4, 16)


def test_profile_lists_the_slowest_nodes(tmp_path):
    model, shape = mlp_model(tmp_path)
    np.save(tmp_path / "x.npy", np.random.default_rng(4).standard_normal(shape).astype(np.float32))
    args = ["run", model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "o", "--repeat", "3",
            "--profile"]
    r = detrq(*args)
    assert r.returncode == 0, r.stderr
    assert "slowest nodes" in r.stdout and "FusedMatMul [2, 4, 32]" in r.stdout, r.stdout  # MatMul + Add fused
    j = json.loads(detrq("--json", *args).stdout)
    nodes = j["slowest_nodes"]
    assert {n["op_type"] for n in nodes} >= {"FusedMatMul", "Softmax"}
    assert [n["ms_per_run"] for n in nodes] == sorted((n["ms_per_run"] for n in nodes), reverse=True)
    assert next(n for n in nodes if n["op_type"] == "Softmax")["shape"] == [2, 8, 4, 4]


def shape_arith_model(tmp_path):
    # Shape -> Gather -> Concat -> Reshape: all of it must fold away at load.
    nodes = [helper.make_node("Shape", ["x"], ["s"]),
             helper.make_node("Gather", ["s", "zero"], ["b"], axis=0),
             helper.make_node("Unsqueeze", ["b", "axes"], ["b1"]),
             helper.make_node("Concat", ["b1", "minus_one"], ["target"], axis=0),
             helper.make_node("Reshape", ["x", "target"], ["flat"]),
             helper.make_node("Mul", ["flat", "flat"], ["y"])]
    inits = [numpy_helper.from_array(np.array(0, np.int64), "zero"), numpy_helper.from_array(np.array([0], np.int64), "axes"),
             numpy_helper.from_array(np.array([-1], np.int64), "minus_one")]
    return save_model(tmp_path / "shape.onnx", nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [3, 4, 5])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits), (3, 4, 5)


@pytest.mark.parametrize("build", [mlp_model, shape_arith_model], ids=["mlp", "shape_arithmetic"])
def test_small_graphs_match_onnxruntime(tmp_path, build):
    ort = pytest.importorskip("onnxruntime")
    model, shape = build(tmp_path)
    info = json.loads(detrq("--json", "inspect", model).stdout)
    assert info["planned"], info.get("plan_error")  # planned today: a regression fails, it does not skip
    x = np.random.default_rng(4).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = detrq("run", model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "o", "--threads", "2")
    assert r.returncode == 0, r.stderr
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    np.testing.assert_allclose(np.load(tmp_path / "o" / "y.npy"), want, rtol=1e-5, atol=1e-6)
    if build is shape_arith_model:
        assert info["planned_nodes"] == 2  # Reshape and Mul; the shape arithmetic folded away


def test_cpu_features_narrow_the_target(tmp_path):
    """`--cpu-features` picks the kernels' instruction sets (MatMul's tile, softmax's exp): each narrowing this
    CPU can run matches onnxruntime; a feature it lacks is exit 4, an unknown name exit 2."""
    ort = pytest.importorskip("onnxruntime")
    model, shape = mlp_model(tmp_path)
    host = json.loads(detrq("--json", "inspect", model).stdout)["cpu_target"]
    assert "target: " + ", ".join(host) in detrq("inspect", model).stdout
    x = np.random.default_rng(5).standard_normal(shape).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    want = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    ran = []
    for features in ["none", "avx2,fma", "avx2,fma,avx512f"]:
        if not set(features.split(",")) - {"none"} <= set(host):
            continue  # a narrowing this CPU cannot run is checked below
        out = tmp_path / features.replace(",", "_")
        r = detrq("run", model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", out, "--cpu-features", features)
        assert r.returncode == 0, r.stderr
        np.testing.assert_allclose(np.load(out / "y.npy"), want, rtol=1e-5, atol=1e-6, err_msg=features)
        ran.append(features)
    assert "none" in ran
    lacking = next((f for f in ["amx-int8", "amx-bf16", "avx512bf16", "avx512vnni", "avx512f", "avx2"] if f not in host),
                   None)
    if lacking is not None:
        r = detrq("run", model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "o", "--cpu-features",
                  lacking)
        assert r.returncode == 4, r.stderr
        assert f"detrq: error: --cpu-features: this CPU lacks {lacking}" in r.stderr, r.stderr
    r = detrq("run", model, "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", tmp_path / "o", "--cpu-features",
              "avx1024")
    assert r.returncode == 2 and "unknown CPU feature 'avx1024'" in r.stderr, r.stderr

NODE_TESTS = "/usr/share/libonnx-testdata/data/node"


def node_test(name):
    folder = os.path.join(NODE_TESTS, name)
    if not os.path.isdir(folder):
        pytest.skip(f"{folder}: Debian's libonnx-testdata is not installed (scripts/setup.sh installs it)")
    return folder


def reference(folder, index=0):
    proto = TensorProto()
    with open(os.path.join(folder, "test_data_set_0", f"output_{index}.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    return numpy_helper.to_array(proto)


def test_graph_without_inputs_runs_with_no_input_flag(tmp_path):
    folder = node_test("test_constant")
    model = onnx.load(os.path.join(folder, "model.onnx"))
    assert len(model.graph.input) == 0
    r = detrq("run", os.path.join(folder, "model.onnx"), "--output-dir", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "out" / f"{model.graph.output[0].name}.npy")
    np.testing.assert_array_equal(got, reference(folder))


@pytest.mark.parametrize("name", ["test_constantofshape_float_ones", "test_constantofshape_int_zeros",
                                  "test_constantofshape_int_shape_zero"])
def test_shape_setting_input_given_as_a_constant_runs_without_inputs(tmp_path, name):
    """ConstantOfShape's only input decides the output's shape: baked into the graph as an initializer, the
    graph has no inputs left, and must run as it is."""
    folder = node_test(name)
    model = onnx.load(os.path.join(folder, "model.onnx"))
    (shape_input,) = model.graph.input
    proto = TensorProto()
    with open(os.path.join(folder, "test_data_set_0", "input_0.pb"), "rb") as f:
        proto.ParseFromString(f.read())
    proto.name = shape_input.name
    model.graph.initializer.append(proto)
    del model.graph.input[:]
    onnx.save(model, str(tmp_path / "model.onnx"))
    r = detrq("run", tmp_path / "model.onnx", "--output-dir", tmp_path / "out")
    assert r.returncode == 0, r.stderr
    want = reference(folder)
    got = np.load(tmp_path / "out" / f"{model.graph.output[0].name}.npy")
    assert got.dtype == want.dtype and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


def test_graph_with_inputs_still_needs_them(tmp_path, passthrough):
    r = detrq("run", passthrough, "--output-dir", tmp_path / "out")
    assert r.returncode == 3, r.stderr
    assert "detrq: error: input 'in_float32': is missing" in r.stderr
