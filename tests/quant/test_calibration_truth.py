"""What `detrq calibrate` tells about the shipped model, against the files it wrote read by other code: the Q/DQ
ONNX read with onnx (which tensors a QuantizeLinear reads, which Conv/MatMul/Gemm run on dequantized inputs) and
the TensorRT cache parsed here. report.html's summary, its tables and calibration.json must all agree with them,
and the cache must hold a scale for every tensor the Q/DQ policy quantizes (inputs and outputs of its INT8
layers), so that TensorRT runs the same layers in INT8."""
import html
import json
import os
import re
import struct
import subprocess

import numpy as np
import onnx
import pytest

DETRQ = os.environ["DETRQ_BIN"]
SOURCE = os.environ["DETRQ_SOURCE_DIR"]
MODEL = os.path.join(SOURCE, "models", "rfdetr_shapes.onnx")
CALIB = os.path.join(SOURCE, "data", "shapes_calib")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if not (os.path.exists(MODEL) and os.path.isdir(CALIB)):
        pytest.skip("the shipped model and images have not landed")
    out = tmp_path_factory.mktemp("calibrate")
    # The calibrate defaults (percentile, smoothing, the DETR policy); 6 images calibrate, 2 are held out.
    r = subprocess.run([DETRQ, "calibrate", "--onnx", MODEL, "--images", CALIB, "--count", "6", "--eval-count", "2",
                        "--cache", out / "calibration.cache", "--qdq", out / "model.qdq.onnx",
                        "--table", out / "calibration.json", "--report", out / "report.html", "--threads", "2"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    return out


def qdq_facts(path):
    """From the Q/DQ ONNX alone: activations a QuantizeLinear reads, and per Conv/MatMul/Gemm whether all its
    data inputs are dequantized (INT8) with the float tensors they stand for."""
    g = onnx.load(str(path)).graph
    inits = {i.name for i in g.initializer}
    producer = {o: n for n in g.node for o in n.output}
    quantized = {n.input[0] for n in g.node if n.op_type == "QuantizeLinear" and n.input[0] not in inits}

    def source(t):  # DequantizeLinear(QuantizeLinear(x)) -> x; a weight's DequantizeLinear -> None
        dq = producer.get(t)
        if dq is None or dq.op_type != "DequantizeLinear":
            return False, t
        q = producer.get(dq.input[0])
        return True, (q.input[0] if q is not None and q.op_type == "QuantizeLinear" else None)

    layers = {}
    for n in g.node:
        if n.op_type not in ("Conv", "MatMul", "Gemm"):
            continue
        data = [source(t) for t in n.input[:2]]
        layers[n.name] = {"int8": all(d for d, _ in data), "inputs": [x for d, x in data if d and x],
                          "outputs": list(n.output)}
    return quantized, layers, g.input[0].name


def read_cache(path):
    lines = path.read_text().splitlines()
    assert lines[0].startswith("TRT-"), lines[0]
    scales = {}
    for line in lines[1:]:
        name, hexbits = line.rsplit(": ", 1)
        scales[name] = struct.unpack(">f", bytes.fromhex(hexbits))[0]
    return scales


def test_calibration_json_agrees_with_the_qdq_model(run):
    quantized, layers, _ = qdq_facts(run / "model.qdq.onnx")
    table = json.loads((run / "calibration.json").read_text())
    entries = {e["name"]: e for e in table["tensors"]}
    # "quantized" is true exactly for what the Q/DQ model quantizes, and never without a scale.
    assert {n for n, e in entries.items() if e["quantized"]} == quantized
    assert all(e["calibrated"] for e in entries.values() if e["quantized"])
    assert all("reason" in e for e in entries.values() if not e["quantized"])
    # sensitivity_db is a number where measured (not here: no --accuracy-budget), never null.
    assert all(e.get("sensitivity_db", 0.0) is not None for e in entries.values())
    assert not any("sensitivity_db" in e for e in entries.values())
    # Per layer: the same INT8/float split as the Q/DQ model, and no layer the policy wanted in INT8 lost
    # for want of a calibrated input.
    assert {l["node"]: l["int8"] for l in table["layers"]} == {n: f["int8"] for n, f in layers.items()}
    assert not [l for l in table["layers"] if "has no calibration" in l.get("reason", "")]
    macs = {l["node"]: l["macs"] for l in table["layers"]}
    share = sum(macs[n] for n, f in layers.items() if f["int8"]) / sum(macs.values())
    assert table["int8_mac_share"] == pytest.approx(share, abs=1e-12)


def test_report_summary_and_tables_agree_with_the_qdq_model(run):
    quantized, layers, _ = qdq_facts(run / "model.qdq.onnx")
    table = json.loads((run / "calibration.json").read_text())
    text = (run / "report.html").read_text()
    int8 = sum(f["int8"] for f in layers.values())
    m = re.search(r"Layers: <b>(\d+) of (\d+)</b> Conv/MatMul/Gemm run in INT8, (\d+) in float; <b>([\d.]+)%</b>", text)
    assert m, text[:2000]
    assert (int(m[1]), int(m[2]), int(m[3])) == (int8, len(layers), len(layers) - int8)
    assert float(m[4]) == pytest.approx(100 * table["int8_mac_share"], abs=0.05)
    m = re.search(r"Tensors: (\d+) observed, (\d+) with a scale \(all of them in the TensorRT cache\), (\d+) quantized "
                  r"in the Q/DQ model, (\d+) left without a scale", text)
    assert m, text[:2000]
    cache = read_cache(run / "calibration.cache")
    observed = len(table["tensors"])
    assert (int(m[1]), int(m[2]), int(m[3]), int(m[4])) == (observed, len(cache), len(quantized), observed - len(cache))
    # The decisions table: one row per layer, INT8 exactly where the Q/DQ model is.
    rows = re.findall(r"<tr><td><code>([^<]*)</code></td><td>(Conv|MatMul|Gemm)</td><td>[^<]*</td><td class=\"[qf]\">"
                      r"(INT8|float)</td>", text)
    assert {html.unescape(n): p == "INT8" for n, _, p in rows} == {n: f["int8"] for n, f in layers.items()}


def test_cache_holds_every_tensor_the_qdq_policy_quantizes(run):
    quantized, layers, graph_input = qdq_facts(run / "model.qdq.onnx")
    cache = read_cache(run / "calibration.cache")
    table = {e["name"]: e for e in json.loads((run / "calibration.json").read_text())["tensors"]}
    needed = {graph_input} | quantized
    for f in layers.values():
        if f["int8"]:
            needed |= set(f["inputs"]) | set(f["outputs"])
    missing = sorted(needed - set(cache))
    assert not missing, missing
    # The cache's scales are calibration.json's (LayerNorm outputs that smoothing changed keep their unsmoothed
    # scale in the cache, which goes with the FP32 model: those may differ).
    same = [n for n in cache if n in table and np.float32(table[n]["scale"]) == np.float32(cache[n])]
    assert len(same) >= len(cache) - len(json.loads((run / "calibration.json").read_text())["smoothing"]["layernorms"])


def test_layers_said_to_be_folded_compute_from_constants_only(run):
    """A layer calibrate keeps in float as "computed from constants only" must be one: every input of it
    derives from initializers alone (walked here over the FP32 graph), so it never runs on an image."""
    g = onnx.load(MODEL, load_external_data=False).graph
    constant = {i.name for i in g.initializer}
    for n in g.node:  # ONNX graphs are topologically sorted
        if n.op_type == "Constant" or (n.input and all(t in constant for t in n.input if t)):
            constant.update(n.output)
    layers = {n.name: n for n in g.node if n.op_type in ("Conv", "MatMul", "Gemm")}
    table = json.loads((run / "calibration.json").read_text())
    folded = [l["node"] for l in table["layers"] if l.get("reason", "").startswith("computed from constants only")]
    assert folded, "RF-DETR's first decoder layer projects its learned queries: at least that one is folded"
    for name in folded:
        assert all(t in constant for t in layers[name].input[:2]), name
    # And every layer computed from constants alone is said to be (never INT8 for nothing).
    for name, n in layers.items():
        if all(t in constant for t in n.input[:2]):
            assert name in folded, name


def test_calibration_inputs_without_a_finite_value_are_refused(tmp_path):
    if not os.path.exists(MODEL):
        pytest.skip("the shipped model has not landed")
    folder = tmp_path / "nan_tensors"
    folder.mkdir()
    for i in range(2):
        np.full((1, 3, 512, 512), np.nan, np.float32).tofile(folder / f"calib_{i:04d}.bin")
    r = subprocess.run([DETRQ, "calibrate", "--onnx", MODEL, "--tensors", folder, "--cache", tmp_path / "c.cache",
                        "--threads", "2"], capture_output=True, text=True, timeout=600)
    assert r.returncode == 3, r.stderr
    assert f"detrq: error: {folder}: the 1 calibration inputs hold no finite value" in r.stderr, r.stderr
    assert "agreement" not in r.stdout and not (tmp_path / "c.cache").exists()
