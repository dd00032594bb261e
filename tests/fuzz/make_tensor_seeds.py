"""Writes the seed corpus of tensor_file_fuzzer (tests/fuzz/corpus/tensor_file): .npy files written by
numpy.save (float32, float16, int8, uint8, int64, bool, a 0-d and an empty array, a version 2.0 header), the
float32 input a `detrq run` of a 1x3x16x16 model takes, and TensorProto .pb files from the ONNX backend test
data Debian ships (libonnx-testdata: float, int64, uint32, float16, bfloat16, bool, string and zero-size
tensors). Run with the pinned .venv python; the output is committed."""
import io
import os
import shutil
import sys

import numpy as np
import numpy.lib.format as npformat

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus", "tensor_file")
os.makedirs(out, exist_ok=True)
rng = np.random.default_rng(19)

arrays = {
    "input_1x3x16x16_f4.npy": rng.random((1, 3, 16, 16), dtype=np.float32),
    "f2.npy": np.arange(6, dtype=np.float16).reshape(2, 3),
    "i1.npy": np.array([-128, -1, 0, 127], np.int8),
    "u1.npy": np.arange(12, dtype=np.uint8).reshape(3, 4),
    "i8.npy": np.array([[1, -2], [3, 1 << 40]], np.int64),
    "b1.npy": np.array([True, False, True]),
    "scalar_f8.npy": np.array(2.5),
    "empty_f4.npy": np.zeros((0, 4), np.float32),
}
for name, a in arrays.items():
    np.save(os.path.join(out, name), a)
buf = io.BytesIO()
npformat.write_array(buf, np.arange(4, dtype=np.float32), version=(2, 0))
with open(os.path.join(out, "v2_f4.npy"), "wb") as f:
    f.write(buf.getvalue())

data = "/usr/share/libonnx-testdata/data/node"
for case, member in [("test_pow_types_float32_int64", "input_1.pb"), ("test_mod_uint32", "input_0.pb"),
                     ("test_cast_FLOAT_to_FLOAT16", "output_0.pb"), ("test_cast_FLOAT_to_BFLOAT16", "output_0.pb"),
                     ("test_equal_bcast", "output_0.pb"), ("test_cast_FLOAT_to_STRING", "output_0.pb"),
                     ("test_reshape_zero_dim", "output_0.pb"), ("test_equal_bcast", "input_0.pb")]:
    src = os.path.join(data, case, "test_data_set_0", member)
    if os.path.exists(src):
        shutil.copy(src, os.path.join(out, f"{case}_{member}"))
