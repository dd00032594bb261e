"""Writes the seed corpus of onnx_loader_fuzzer (tests/fuzz/corpus/onnx_loader): small models that
cover initializers in every storage form, attributes of every kind, Constant nodes, a cycle, a
dangling input and external data references. Run with the pinned .venv python; the output is committed."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "onnx_loader")
os.makedirs(out, exist_ok=True)


def save(name, graph, opset=17):
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="detrq-seed")
    with open(os.path.join(out, name), "wb") as f:
        f.write(model.SerializeToString())


x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
w = numpy_helper.from_array(np.arange(4, dtype=np.float32).reshape(1, 4), "w")
save("add_relu.onnx", helper.make_graph(
    [helper.make_node("Add", ["x", "w"], ["s"], name="add"), helper.make_node("Relu", ["s"], ["y"])],
    "add_relu", [x], [y], [w]))

typed = [
    helper.make_tensor("f16", TensorProto.FLOAT16, [2], np.array([1, 2], np.float16).view(np.uint16).tolist()),
    helper.make_tensor("i64", TensorProto.INT64, [3], [1, -2, 3]),
    helper.make_tensor("d", TensorProto.DOUBLE, [], [2.5]),
    helper.make_tensor("b", TensorProto.BOOL, [2], [True, False]),
    helper.make_tensor("u8", TensorProto.UINT8, [2], [7, 255]),
]
save("typed_initializers.onnx", helper.make_graph(
    [helper.make_node("Identity", ["i64"], ["y"])], "typed", [], [helper.make_tensor_value_info("y", TensorProto.INT64, [3])],
    typed))

const = helper.make_node("Constant", [], ["c"], value=numpy_helper.from_array(np.ones((2, 2), np.float32)))
conv = helper.make_node("Conv", ["x4", "c4"], ["y"], name="conv", kernel_shape=[1, 1], pads=[0, 0, 0, 0],
                        auto_pad="NOTSET", strides=[1, 1])
cf = helper.make_node("Constant", [], ["cf"], value_float=1.5)
cis = helper.make_node("Constant", [], ["c4"], value_ints=[1, 1, 1, 1])
mode = helper.make_node("Resize", ["x4", "", "cf"], ["r"], mode="nearest", coordinate_transformation_mode="asymmetric",
                        cubic_coeff_a=-0.75)
save("attributes.onnx", helper.make_graph(
    [const, cf, cis, conv, mode], "attrs",
    [helper.make_tensor_value_info("x4", TensorProto.FLOAT, ["batch", 1, 2, 2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]))

save("cycle.onnx", helper.make_graph(
    [helper.make_node("Add", ["x", "b"], ["a"]), helper.make_node("Relu", ["a"], ["b"]), helper.make_node("Relu", ["a"], ["y"])],
    "cycle", [x], [y]))

save("dangling.onnx", helper.make_graph([helper.make_node("Add", ["x", "nowhere"], ["y"])], "dangling", [x], [y]))

ext = TensorProto()
ext.name, ext.data_type = "e", TensorProto.FLOAT
ext.dims.append(4)
ext.data_location = TensorProto.EXTERNAL
for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", "16")):
    entry = ext.external_data.add()
    entry.key, entry.value = k, v
save("external_ref.onnx", helper.make_graph([helper.make_node("Add", ["x", "e"], ["y"])], "ext", [x], [y], [ext]))

bad = numpy_helper.from_array(np.zeros(10, np.float32), "bad")
bad.raw_data = bad.raw_data[:8]
save("size_mismatch.onnx", helper.make_graph([helper.make_node("Add", ["x", "bad"], ["y"])], "bad", [x], [y], [bad]))
print("seeds written to", out)
