"""The onnxruntime session the Q/DQ tests compare detrq with."""
import onnxruntime as ort


def as_defined(model):
    """onnxruntime executing the Q/DQ graph as the ONNX definition states it (DequantizeLinear, then the
    float operator, then QuantizeLinear), graph optimizations off: its fused int8 kernels are not a
    reference on every CPU. On an AVX2 CPU without VNNI (AMD Zen 3) onnxruntime 1.30's QLinearMatMul
    saturates its 16-bit pair sums: 142 quantization steps off on test_qdq_int8_epilogues' int8 graph,
    where its unoptimized run and detrq agree exactly."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
