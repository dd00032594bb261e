"""Writes the seed corpora of engine_file_fuzzer and calibration_table_fuzzer (and two runnable models, FP32 and
Q/DQ, for onnx_loader_fuzzer, whose Session then plans real Conv/MatMul/Gemm graphs) from real detrq outputs: two
small image models (Conv, MatMul by a constant weight, Gemm; 1x3x16x16 input) are calibrated by
`detrq calibrate` on random tensors (calibration.json, Q/DQ model) and built by `detrq build-engine` into a
float32 engine and an INT8 engine (packed float panels and packed int8 weights). Every seed stays a few KB.
Usage: make_engine_seeds.py DETRQ_BINARY [CORPUS_ROOT]. Run with the pinned .venv python; the output is committed."""
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

detrq = sys.argv[1]
root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "corpus")
engines = os.path.join(root, "engine_file")
tables = os.path.join(root, "calibration_table")
models = os.path.join(root, "onnx_loader")
os.makedirs(engines, exist_ok=True)
os.makedirs(models, exist_ok=True)
os.makedirs(tables, exist_ok=True)
rng = np.random.default_rng(19)


def weight(name, *shape):
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)


def conv_matmul_model():
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 16, 8])
    nodes = [
        helper.make_node("Conv", ["input", "conv.w", "conv.b"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                         strides=[4, 4]),
        helper.make_node("Relu", ["c"], ["r"], name="relu"),
        helper.make_node("Reshape", ["r", "shape"], ["tokens0"], name="flatten"),
        helper.make_node("Transpose", ["tokens0"], ["tokens"], name="to_tokens", perm=[0, 2, 1]),
        helper.make_node("MatMul", ["tokens", "proj.w"], ["p"], name="proj"),
        helper.make_node("Add", ["p", "proj.b"], ["logits"], name="proj_bias"),
    ]
    inits = [weight("conv.w", 8, 3, 3, 3), weight("conv.b", 8), numpy_helper.from_array(np.array([1, 8, 16], np.int64), "shape"),
             weight("proj.w", 8, 8), weight("proj.b", 8)]
    return helper.make_graph(nodes, "conv_matmul", [x], [y], inits)


def gemm_model():
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 16, 16])
    y = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4])
    nodes = [
        helper.make_node("ReduceMean", ["input"], ["f"], name="pool", axes=[2, 3], keepdims=0),
        helper.make_node("Gemm", ["f", "fc.w", "fc.b"], ["h"], name="fc", transB=1),
        helper.make_node("Sigmoid", ["h"], ["scores"], name="sigmoid"),
    ]
    return helper.make_graph(nodes, "gemm", [x], [y], [weight("fc.w", 4, 3), weight("fc.b", 4)])


with tempfile.TemporaryDirectory() as work:
    tensors = os.path.join(work, "tensors")
    os.makedirs(tensors)
    for i in range(6):
        rng.random((1, 3, 16, 16), dtype=np.float32).tofile(os.path.join(tensors, f"calib_{i:04d}.bin"))
    for name, graph in (("conv_matmul", conv_matmul_model()), ("gemm", gemm_model())):
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="detrq-seed")
        onnx.checker.check_model(model)
        src = os.path.join(work, name + ".onnx")
        onnx.save(model, src)
        qdq = os.path.join(work, name + ".qdq.onnx")
        table = os.path.join(work, name + ".calibration.json")
        subprocess.run([detrq, "calibrate", "--onnx", src, "--tensors", tensors, "--eval-count", "2", "--cache",
                        os.path.join(work, name + ".cache"), "--qdq", qdq, "--table", table, "--no-detr-defaults",
                        "--threads", "1"], check=True)
        shutil.copy(table, os.path.join(tables, name + ".calibration.json"))
        shutil.copy(src, os.path.join(models, name + ".onnx"))
        shutil.copy(qdq, os.path.join(models, name + ".qdq.onnx"))
        for kind, args in (("fp32", ["--onnx", src]), ("int8", ["--qdq", qdq])):
            out = os.path.join(engines, f"{name}_{kind}.engine")
            subprocess.run([detrq, "build-engine", *args, "--backend", "cpu", "--cpu-features", "avx2,fma", "--output", out,
                            "--work-dir", os.path.join(work, f"{name}_{kind}.d"), "--threads", "1"], check=True)
            if os.path.getsize(out) > 64 * 1024:
                sys.exit(f"{out} is {os.path.getsize(out)} bytes: too big for a seed")
