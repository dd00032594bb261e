"""detrq calibrate end to end on a small real ONNX model: the TensorRT cache, calibration.json, the
Q/DQ model (checked by onnx.checker and run by onnxruntime) and the INT8-vs-FP32 figures, which must
agree with onnxruntime running the same Q/DQ model; plus the errors a user meets."""
import json
import os
import struct
import subprocess

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from ort_reference import as_defined  # tests/quant/ort_reference.py

DETRQ = os.environ["DETRQ_BIN"]


def build_model(path):
    rng = np.random.default_rng(0)
    inits = {
        "W0": rng.normal(0, 0.5, (8, 3, 1, 1)),
        "W1": rng.normal(0, 0.2, (8, 8, 3, 3)),
        "W2": rng.normal(0, 0.3, (16, 16)),
        "W3": rng.normal(0, 0.3, (16, 16)),
        "W4": rng.normal(0, 0.3, (16, 4)),
    }
    initializers = [numpy_helper.from_array(v.astype(np.float32), k) for k, v in inits.items()]
    mask = np.zeros((16,), dtype=bool)
    mask[:4] = True  # 75% of the logits are masked to -inf, as RF-DETR does
    initializers.append(numpy_helper.from_array(mask, "mask"))
    initializers.append(numpy_helper.from_array(np.array(-np.inf, dtype=np.float32), "neg_inf"))
    nodes = [
        helper.make_node("Conv", ["input", "W0"], ["c0"], name="/patch_embed/proj/Conv"),
        helper.make_node("Relu", ["c0"], ["r0"], name="/relu0"),
        helper.make_node("Conv", ["r0", "W1"], ["c1"], name="/backbone/conv1/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="/relu1"),
        helper.make_node("MatMul", ["r1", "W2"], ["m1"], name="/encoder/fc/MatMul"),
        helper.make_node("Add", ["m1", "r1"], ["a1"], name="/encoder/residual"),
        helper.make_node("MatMul", ["a1", "W3"], ["logits"], name="/class_embed/MatMul"),
        helper.make_node("Where", ["mask", "logits", "neg_inf"], ["labels"], name="/mask"),
        helper.make_node("MatMul", ["a1", "W4"], ["box"], name="/bbox_embed/layers.0/MatMul"),
        helper.make_node("Sigmoid", ["box"], ["dets"], name="/sigmoid"),
    ]
    graph = helper.make_graph(
        nodes, "tiny_detr",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])],
        [helper.make_tensor_value_info("labels", TensorProto.FLOAT, [1, 8, 16, 16]),
         helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, 8, 16, 4])],
        initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return model


def write_tensors(folder, n, shape=(1, 3, 16, 16)):
    folder.mkdir()
    rng = np.random.default_rng(1)
    arrays = []
    for i in range(n):
        a = rng.normal(0, 1, shape).astype(np.float32)
        a.tofile(folder / f"calib_{i:04d}.bin")
        arrays.append(a)
    return arrays


def calibrate(*args):
    return subprocess.run([DETRQ, *args], capture_output=True, text=True, timeout=300)


def read_cache(path):
    lines = open(path).read().splitlines()
    scales = {}
    for line in lines[1:]:
        name, hexbits = line.rsplit(": ", 1)
        scales[name] = struct.unpack(">f", bytes.fromhex(hexbits))[0]
    return lines[0], scales


def sqnr(ref, test):
    ok = np.isfinite(ref) & np.isfinite(test)
    r, t = ref[ok].astype(np.float64), test[ok].astype(np.float64)
    noise = np.sum((r - t) ** 2)
    return np.inf if noise == 0 else 10 * np.log10(np.sum(r * r) / noise)


@pytest.fixture()
def setup(tmp_path):
    model_path = tmp_path / "model.onnx"
    build_model(str(model_path))
    arrays = write_tensors(tmp_path / "tensors", 6)
    return tmp_path, model_path, arrays


def test_calibrate_writes_cache_table_qdq_and_int8_matches_onnxruntime(setup):
    tmp, model_path, arrays = setup
    r = calibrate("--json", "calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"),
                  "--count", "4", "--method", "minmax", "--cache-path", str(tmp / "calibration.cache"),
                  "--qdq-out", str(tmp / "model.qdq.onnx"), "--table", str(tmp / "calibration.json"),
                  "--report", str(tmp / "report.html"), "--all-tensors")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)
    assert summary["images"] == 4 and summary["heldout_images"] == 2

    # The cache: TensorRT's header and the table's scales, bit for bit.
    header, scales = read_cache(tmp / "calibration.cache")
    assert header == "TRT-8601-MinMaxCalibration"
    table = json.load(open(tmp / "calibration.json"))
    by_name = {t["name"]: t for t in table["tensors"]}
    for name, scale in scales.items():
        assert by_name[name]["calibrated"] and np.float32(by_name[name]["scale"]) == np.float32(scale)
    # 75% -inf: left in float, and the table says why; it is not in the cache.
    assert not by_name["labels"]["quantized"] and "inf" in by_name["labels"]["reason"]
    assert by_name["labels"]["nonfinite"] == 4 * 8 * 16 * 12
    assert "labels" not in scales

    # minmax amax of an intermediate tensor = max |x| over the 4 calibration tensors, from onnxruntime.
    fp32 = onnx.load(str(model_path))
    for name in ("r1", "a1"):
        fp32.graph.output.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, None))
    sess = ort.InferenceSession(fp32.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = [dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": a}))) for a in arrays[:4]]
    for name in ("r1", "a1"):
        expected = max(float(np.max(np.abs(o[name]))) for o in outs)
        assert by_name[name]["amax"] == pytest.approx(expected, rel=1e-6)
    assert by_name["input"]["amax"] == pytest.approx(max(float(np.max(np.abs(a))) for a in arrays[:4]), rel=1e-6)

    # The Q/DQ model: valid ONNX, opset >= 13, int8 per-channel weights, the policy's float layers untouched.
    qdq = onnx.load(str(tmp / "model.qdq.onnx"))
    onnx.checker.check_model(qdq, full_check=True)
    assert [o.version for o in qdq.opset_import if o.domain in ("", "ai.onnx")][0] >= 13
    nodes = {n.name: n for n in qdq.graph.node}
    inits = {i.name: i for i in qdq.graph.initializer}
    assert inits["W1_quantized"].data_type == TensorProto.INT8
    assert numpy_helper.to_array(inits["W1_scale"]).shape == (8,)
    assert "W1" not in inits
    assert nodes["/backbone/conv1/Conv"].input[0].endswith("_dequantized")
    assert nodes["/encoder/fc/MatMul"].input[1].endswith("_dequantized")
    assert nodes["/patch_embed/proj/Conv"].input[0] == "input_dequantized"  # INT8 since the MAC count
    assert nodes["/bbox_embed/layers.0/MatMul"].input == ["a1", "W4"]
    assert sum(n.op_type == "QuantizeLinear" for n in qdq.graph.node) >= 2

    # onnxruntime runs it, and its INT8-vs-FP32 SQNR on the held-out tensors is the one detrq printed.
    ref = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    q = as_defined(str(tmp / "model.qdq.onnx"))  # onnxruntime's fused int8 kernels saturate on AVX2 CPUs
    for output in ("dets", "labels"):
        ref_out = np.concatenate([ref.run([output], {"input": a})[0].ravel() for a in arrays[4:]])
        q_out = np.concatenate([q.run([output], {"input": a})[0].ravel() for a in arrays[4:]])
        ort_db = sqnr(ref_out, q_out)
        assert ort_db > 20
        assert summary["sqnr_db"][output] == pytest.approx(ort_db, abs=0.5)

    html = open(tmp / "report.html").read()
    assert "<svg" in html and "box-regression head" in html


def test_percentile_is_the_default_and_the_cache_version_is_chosen(setup):
    tmp, model_path, _ = setup
    r = calibrate("calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"),
                  "--cache-path", str(tmp / "c.cache"), "--cache-version", "100100")
    assert r.returncode == 0, r.stderr
    header, scales = read_cache(tmp / "c.cache")
    assert header == "TRT-100100-EntropyCalibration2"
    assert all(s > 0 for s in scales.values())
    # Without --all-tensors: the inputs and outputs of the layers the policy quantizes, and the graph input.
    assert set(scales) == {"input", "c0", "r0", "c1", "r1", "m1", "a1", "logits"}
    assert "SQNR" in r.stdout


def test_wrong_shape_tensors_are_refused_naming_the_file(setup):
    tmp, model_path, _ = setup
    bad = tmp / "bad"
    write_tensors(bad, 2, shape=(1, 3, 8, 8))
    r = calibrate("calibrate", "--onnx", str(model_path), "--tensors", str(bad), "--cache-path", str(tmp / "c.cache"))
    assert r.returncode == 3
    assert "calib_0000.bin" in r.stderr and "768" in r.stderr
    assert not (tmp / "c.cache").exists()


def test_more_tensors_asked_than_present_is_a_failure(setup):
    tmp, model_path, _ = setup
    r = calibrate("calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"), "--count", "50",
                  "--cache-path", str(tmp / "c.cache"))
    assert r.returncode == 1
    assert "fewer than --count 50" in r.stderr


def test_unknown_method_is_a_usage_error(setup):
    tmp, model_path, _ = setup
    r = calibrate("calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"), "--method", "kl",
                  "--cache-path", str(tmp / "c.cache"))
    assert r.returncode == 2
    assert "entropy, minmax, percentile or mse" in r.stderr


def test_multiply_adds_in_int8_are_counted_by_calibrate_the_table_and_inspect(setup):
    tmp, model_path, _ = setup
    r = calibrate("--json", "calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"),
                  "--cache-path", str(tmp / "c.cache"), "--qdq-out", str(tmp / "q.onnx"), "--table", str(tmp / "t.json"))
    assert r.returncode == 0, r.stderr
    # By hand: output elements x sum length. c0 2048 x 3, c1 2048 x 72, the three MatMuls 2048/2048/512 x 16;
    # the box head stays float by default.
    total = 2048 * 3 + 2048 * 72 + 2048 * 16 + 2048 * 16 + 512 * 16
    int8 = total - 512 * 16
    summary = json.loads(r.stdout)
    assert (summary["macs_total"], summary["macs_int8"]) == (total, int8)
    assert summary["int8_mac_share"] == pytest.approx(int8 / total)
    table = json.load(open(tmp / "t.json"))
    layers = {l["node"]: l for l in table["layers"]}
    assert layers["/backbone/conv1/Conv"] == {"node": "/backbone/conv1/Conv", "op_type": "Conv", "macs": 2048 * 72,
                                              "int8": True}
    assert not layers["/bbox_embed/layers.0/MatMul"]["int8"]
    assert layers["/bbox_embed/layers.0/MatMul"]["reason"] == "box-regression head"
    i = subprocess.run([DETRQ, "--json", "inspect", str(tmp / "q.onnx"), "--layers"], capture_output=True, text=True)
    assert i.returncode == 0, i.stderr
    inspected = json.loads(i.stdout)
    assert (inspected["macs"], inspected["macs_int8"]) == (total, int8)
    assert {l["node"]: l["int8"] for l in inspected["layers"]} == {n: l["int8"] for n, l in layers.items()}
    plain = subprocess.run([DETRQ, "inspect", str(model_path)], capture_output=True, text=True)
    assert "0.0% in INT8" in plain.stdout


@pytest.mark.parametrize("flag", ["--accuracy-budget", "--ap-budget"])
@pytest.mark.parametrize("budget, problem", [("-3", "is negative"), ("-0.1", "is negative"), ("abc", "is not a number"),
                                             ("nan", "is not a number"), ("inf", "is not a number"),
                                             ("0.1x", "is not a number"), ("", "is not a number")])
def test_a_bad_budget_is_a_usage_error_naming_the_flag_and_value(setup, flag, budget, problem):
    tmp, model_path, _ = setup
    r = calibrate("calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"),
                  flag, budget, "--cache-path", str(tmp / "c.cache"))
    assert r.returncode == 2, r.stderr
    assert flag in r.stderr and f"'{budget}' {problem}" in r.stderr, r.stderr
    assert not (tmp / "c.cache").exists()  # refused before any work


def test_the_ap_budget_is_recorded_and_not_searched_where_ap_cannot_be_measured(setup):
    # This model's labels are [1, 8, 16, 16], not RF-DETR's [1, queries, classes]: no label-free AP.
    tmp, model_path, _ = setup
    r = calibrate("--json", "calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"), "--count", "4",
                  "--cache-path", str(tmp / "c.cache"), "--table", str(tmp / "t.json"), "--ap-budget", "0.5")
    assert r.returncode == 0, r.stderr
    search = json.load(open(tmp / "t.json"))["ap_budget"]
    assert search["budget_points"] == 0.5 and not search["measurable"] and not search["searched"]
    assert search["evaluations"] == 1 and search["float_groups"] == []
    assert json.loads(r.stdout)["ap_budget"]["summary"] == search["summary"]


def test_detrq_runs_the_qdq_model_like_onnxruntime_within_one_step(setup):
    tmp, model_path, arrays = setup
    r = calibrate("calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"), "--count", "4",
                  "--cache-path", str(tmp / "c.cache"), "--qdq-out", str(tmp / "q.onnx"))
    assert r.returncode == 0, r.stderr
    # Expose every dequantized activation so both runtimes' INT8 values can be compared directly.
    q = onnx.load(str(tmp / "q.onnx"))
    inits = {i.name: i for i in q.graph.initializer}
    scales = {}
    for node in q.graph.node:
        if node.op_type == "DequantizeLinear" and not node.input[0].startswith("W"):
            scales[node.output[0]] = float(numpy_helper.to_array(inits[node.input[1]]))
            q.graph.output.append(helper.make_tensor_value_info(node.output[0], TensorProto.FLOAT, None))
    assert len(scales) >= 3
    onnx.save(q, str(tmp / "q_debug.onnx"))
    out_dir = tmp / "detrq_out"
    x = tmp / "tensors" / "calib_0005.bin"
    r = subprocess.run([DETRQ, "run", str(tmp / "q_debug.onnx"), "--input", f"input={x}", "--output-dir", str(out_dir)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sess = ort.InferenceSession(str(tmp / "q_debug.onnx"), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    expected = dict(zip(names, sess.run(None, {"input": arrays[5]})))
    for name, scale in scales.items():
        got = np.load(out_dir / f"{name}.npy")
        assert np.max(np.abs(got - expected[name])) <= scale * 1.0001, name
    for name in ("dets", "labels"):
        got = np.load(out_dir / f"{name}.npy")
        assert sqnr(expected[name], got) > 40, name


def test_accuracy_budget_returns_the_most_sensitive_layers_to_float(setup):
    tmp, model_path, _ = setup
    common = ["--json", "calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"), "--count", "4",
              "--cache-path", str(tmp / "c.cache"), "--no-detr-defaults"]
    r = calibrate(*common)
    assert r.returncode == 0, r.stderr
    plain = json.loads(r.stdout)
    worst = min(v for v in plain["sqnr_db"].values() if v is not None)
    budget = worst + 10  # out of reach with every layer in INT8
    r = calibrate(*common, "--accuracy-budget", str(budget), "--table", str(tmp / "t.json"),
                  "--report", str(tmp / "r.html"))
    assert r.returncode == 0, r.stderr
    tuned = json.loads(r.stdout)
    assert tuned["quantized_nodes"] < plain["quantized_nodes"]
    assert all(v is None or v >= budget for v in tuned["sqnr_db"].values())
    table = json.load(open(tmp / "t.json"))
    assert any(t["sensitivity_db"] is not None for t in table["tensors"])
    assert "accuracy budget: alone in INT8 it gives" in open(tmp / "r.html").read()


def test_residual_adds_get_qdq_on_their_skip_input_and_run_in_both_runtimes(setup):
    tmp, model_path, arrays = setup
    r = calibrate("--json", "calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"), "--count", "4",
                  "--cache-path", str(tmp / "c.cache"), "--qdq-out", str(tmp / "r.onnx"), "--residual-adds")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["quantized_residual_adds"] == 1
    q = onnx.load(str(tmp / "r.onnx"))
    onnx.checker.check_model(q, full_check=True)
    producers = {o: n for n in q.graph.node for o in n.output}
    residual = next(n for n in q.graph.node if n.name == "/encoder/residual")
    # The MatMul's side stays its output (TensorRT fuses the Add into it); the skip input is Q/DQ'd.
    assert residual.input[0] == "m1"
    assert producers[residual.input[1]].op_type == "DequantizeLinear"
    assert producers[producers[residual.input[1]].input[0]].op_type == "QuantizeLinear"
    sess = ort.InferenceSession(str(tmp / "r.onnx"), providers=["CPUExecutionProvider"])
    expected = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, {"input": arrays[5]})))
    ref = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"]).run(["dets"], {"input": arrays[5]})[0]
    assert sqnr(ref, expected["dets"]) > 20
    out_dir = tmp / "detrq_r"
    r = subprocess.run([DETRQ, "run", str(tmp / "r.onnx"), "--input", f"input={tmp / 'tensors' / 'calib_0005.bin'}",
                        "--output-dir", str(out_dir)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sqnr(expected["dets"], np.load(out_dir / "dets.npy")) > 40

    # Off by default: the Add reads the tensors themselves.
    r = calibrate("calibrate", "--onnx", str(model_path), "--tensors", str(tmp / "tensors"), "--count", "4",
                  "--cache-path", str(tmp / "c2.cache"), "--qdq-out", str(tmp / "d.onnx"))
    assert r.returncode == 0, r.stderr
    default = next(n for n in onnx.load(str(tmp / "d.onnx")).graph.node if n.name == "/encoder/residual")
    assert list(default.input) == ["m1", "r1"]
