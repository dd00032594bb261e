"""Hostile files that declare a 1 TB tensor are refused with exit 3 and an error naming the file, under an
address-space limit of 200 MB: the real `detrq inspect`, `detrq run` and `detrq detect --engine` must check
declared sizes before allocating (an allocation attempt would fail as 'out of memory', exit 6, or crash).
The ONNX files are written with the onnx package; the engines are real engines from `detrq build-engine`
whose JSON header is edited (and its checksum recomputed) to declare the huge tensor."""
import json
import os
import resource
import struct
import subprocess

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

DETRQ = os.environ["DETRQ_BIN"]
LIMIT = 200 * 1024 * 1024
TB = [1, 4, 1 << 18, 1 << 18]  # float32: 2^40 bytes
IMAGE = os.path.join(os.path.dirname(__file__), "..", "fuzz", "corpus", "image_decoder", "rgb.jpg")


def limited():
    resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))


def run_limited(*args):
    threads = [] if args[0] == "inspect" else ["--threads", "1"]  # inspect runs nothing
    return subprocess.run([DETRQ, *args, *threads], capture_output=True, text=True, timeout=120, preexec_fn=limited)


def assert_refused(r, path):
    assert r.returncode == 3, (r.returncode, r.stderr)
    assert str(path) in r.stderr, r.stderr
    assert "out of memory" not in r.stderr and "internal" not in r.stderr, r.stderr


def save(path, nodes, inputs, outputs, inits=()):
    model = helper.make_model(helper.make_graph(nodes, "hostile", inputs, outputs, list(inits)),
                              opset_imports=[helper.make_opsetid("", 17)])
    onnx.save(model, str(path))
    return path


def test_the_limit_leaves_room_for_a_real_model(tmp_path):
    # The same commands on a well-formed small model succeed under the limit: the refusals below are about
    # the declared sizes, not about a limit too tight for detrq itself.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    model = save(tmp_path / "ok.onnx", [helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    np.save(tmp_path / "x.npy", np.arange(4, dtype=np.float32).reshape(1, 4) - 2)
    r = run_limited("inspect", str(model))
    assert r.returncode == 0, r.stderr
    r = run_limited("run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    assert np.load(tmp_path / "out" / "y.npy").tolist() == [[0, 0, 0, 1]]


def test_an_onnx_input_declared_1tb_is_refused(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, TB)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, TB)
    model = save(tmp_path / "input_1tb.onnx", [helper.make_node("Relu", ["x"], ["y"])], [x], [y])
    assert_refused(run_limited("inspect", str(model)), model)
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    assert_refused(run_limited("run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir",
                               str(tmp_path / "out")), model)


def test_an_onnx_constant_of_shape_1tb_is_refused(tmp_path):
    shape = numpy_helper.from_array(np.array(TB, np.int64), "shape")
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = save(tmp_path / "constant_1tb.onnx", [helper.make_node("ConstantOfShape", ["shape"], ["y"])], [], [y], [shape])
    assert_refused(run_limited("inspect", str(model)), model)
    assert_refused(run_limited("run", str(model), "--output-dir", str(tmp_path / "out")), model)


def test_an_onnx_initializer_declared_1tb_is_refused(tmp_path):
    w = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=TB, raw_data=b"\0" * 16)  # onnx.helper refuses this
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    model = save(tmp_path / "initializer_1tb.onnx", [helper.make_node("Add", ["x", "w"], ["y"])], [x], [y], [w])
    assert_refused(run_limited("inspect", str(model)), model)
    np.save(tmp_path / "x.npy", np.zeros((1, 4), np.float32))
    assert_refused(run_limited("run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--output-dir",
                               str(tmp_path / "out")), model)


# ---- engines ----------------------------------------------------------------------------------------

def engine_checksum(data):
    """The engine preamble's checksum (engine_file.cpp: four multiply-xor lanes, then the tail bytes)."""
    prime, mask = 0x100000001b3, (1 << 64) - 1
    lanes = [0xcbf29ce484222325, 0x84222325cbf29ce4, 0x9e3779b97f4a7c15, 0xc2b2ae3d27d4eb4f]
    full = len(data) // 32 * 32
    words = np.frombuffer(data[:full], dtype="<u8").reshape(-1, 4).tolist() if full else []
    for row in words:
        for k in range(4):
            lanes[k] = ((lanes[k] ^ row[k]) * prime) & mask
    h = (lanes[0] ^ (lanes[1] << 1) ^ (lanes[2] << 2) ^ (lanes[3] << 3)) & mask
    for b in data[full:]:
        h = ((h ^ b) * prime) & mask
    return ((h ^ len(data)) * prime) & mask


def read_engine(path):
    data = path.read_bytes()
    header_bytes, payload_offset = struct.unpack_from("<QQ", data, 16)
    return data, json.loads(data[64:64 + header_bytes]), payload_offset


def write_engine(path, data, doc, payload_offset):
    """Writes `doc` as the header of a copy of `data`; the payload moves to the next 64-byte boundary after it
    (tensor offsets are relative to the payload, so they stay right)."""
    header = json.dumps(doc, separators=(",", ":")).encode()
    offset = (64 + len(header) + 63) // 64 * 64
    pre = bytearray(data[:64])
    struct.pack_into("<QQ", pre, 16, len(header), offset)
    struct.pack_into("<Q", pre, 40, engine_checksum(header))
    path.write_bytes(bytes(pre) + header + b"\0" * (offset - 64 - len(header)) + data[payload_offset:])
    return path


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A real detection-shaped engine built by detrq: a 1x3x16x16 image in; 'dets' from a Conv and a MatMul,
    'labels' an Expand of the image's mean to [1, 16, 3] by a stored shape."""
    d = tmp_path_factory.mktemp("engine")
    rng = np.random.default_rng(7)
    w = lambda name, *s: numpy_helper.from_array((rng.standard_normal(s) * 0.1).astype(np.float32), name)
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    dets = helper.make_tensor_value_info("dets", TensorProto.FLOAT, [1, 16, 4])
    labels = helper.make_tensor_value_info("labels", TensorProto.FLOAT, [1, 16, 3])
    nodes = [helper.make_node("Conv", ["input", "cw"], ["c"], kernel_shape=[4, 4], strides=[4, 4]),
             helper.make_node("Reshape", ["c", "shape"], ["t0"]),
             helper.make_node("Transpose", ["t0"], ["t"], perm=[0, 2, 1]),
             helper.make_node("MatMul", ["t", "mw"], ["dets"]),
             helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
             helper.make_node("Expand", ["m", "labels_shape"], ["labels"])]
    src = save(d / "small.onnx", nodes, [x], [dets, labels],
               [w("cw", 8, 3, 4, 4), numpy_helper.from_array(np.array([1, 8, 16], np.int64), "shape"), w("mw", 8, 4),
                numpy_helper.from_array(np.array([1, 16, 3], np.int64), "labels_shape")])
    out = d / "small.engine"
    r = subprocess.run([DETRQ, "build-engine", "--onnx", str(src), "--backend", "cpu", "--output", str(out),
                        "--work-dir", str(d / "work")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return out


def test_the_unedited_engine_loads_under_the_limit(engine, tmp_path):
    data, doc, payload_offset = read_engine(engine)
    copy = write_engine(tmp_path / "same.engine", data, doc, payload_offset)  # re-encoded, nothing changed
    r = run_limited("inspect", str(copy))
    assert r.returncode == 0, r.stderr
    r = run_limited("detect", "--engine", str(copy), IMAGE)
    assert r.returncode == 0, r.stderr


def test_an_engine_whose_input_is_declared_1tb_is_refused(engine, tmp_path):
    data, doc, payload_offset = read_engine(engine)
    doc["model"]["inputs"][0]["shape"] = [1, 3, 1 << 19, 1 << 19]  # float32: 3 TB
    hostile = write_engine(tmp_path / "input_1tb.engine", data, doc, payload_offset)
    assert_refused(run_limited("inspect", str(hostile)), hostile)
    assert_refused(run_limited("detect", "--engine", str(hostile), IMAGE), hostile)


def test_an_engine_whose_stored_shape_makes_a_1tb_activation_is_refused(engine, tmp_path):
    data, doc, payload_offset = read_engine(engine)
    m = doc["model"]
    expand = next(n for n in m["nodes"] if n["op"] == "Expand")
    entry = m["tensors"][m["initializers"][expand["inputs"][1]]]
    assert entry["shape"] == [3], entry
    payload = bytearray(data[payload_offset:])
    struct.pack_into("<qqq", payload, entry["offset"], 1, 1 << 18, 1 << 20)  # [1, 2^18, 2^20] float32: 1 TB
    pre = bytearray(data[:64])
    struct.pack_into("<Q", pre, 48, engine_checksum(bytes(payload)))
    hostile = write_engine(tmp_path / "activation_1tb.engine", bytes(pre) + data[64:payload_offset] + bytes(payload),
                           doc, payload_offset)
    # The activation's size follows from a stored weight, which only planning (at load) reads.
    assert_refused(run_limited("detect", "--engine", str(hostile), IMAGE), hostile)


def test_an_engine_tensor_declared_1tb_is_refused(engine, tmp_path):
    data, doc, payload_offset = read_engine(engine)
    entry = doc["model"]["tensors"][0]
    entry["shape"], entry["bytes"] = TB, 1 << 40
    hostile = write_engine(tmp_path / "tensor_1tb.engine", data, doc, payload_offset)
    # inspect reads only the header (no weights), so only loading it refuses the table entry.
    assert_refused(run_limited("detect", "--engine", str(hostile), IMAGE), hostile)
