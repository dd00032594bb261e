"""Engines built for a CPU target narrower than this machine's (`build-engine --cpu-features avx2,fma`), for
the FP32 and a Q/DQ model: no packed state needs a feature outside the target, `inspect` shows the target,
and under `qemu-x86_64 -cpu Haswell-v4` (an emulated AVX2-only CPU) `detect` finds what `detect --onnx`
finds here (same labels, scores within 0.02, boxes within 2 px: the ISAs round differently). qemu is slow:
one image per model."""
import json
import os
import shutil
import struct
import subprocess

import pytest

from conftest import DETRQ, MODEL, VAL, make_qdq_model, require_fixtures, run_detrq

QEMU = shutil.which("qemu-x86_64")
TARGET = {"avx2", "fma"}
THRESHOLD = 0.5


def engine_document(path):
    """The JSON header of a detrq engine file (after its 64-byte preamble, as engine_file.h lays it out)."""
    data = open(path, "rb").read()
    magic, _version, _flags, header_bytes = struct.unpack_from("<8sIIQ", data, 0)
    assert magic == b"DETRQENG"
    return json.loads(data[64:64 + header_bytes])


def detections(stdout):
    return json.loads(stdout)[0]["detections"]


def assert_same_detections(want, got):
    """One to one by label, score within 0.02 and box within 2 px; a detection within 0.02 of the threshold
    may be on one side only."""
    unmatched = list(got)
    for w in want:
        match = next((g for g in unmatched if g["label"] == w["label"] and abs(g["score"] - w["score"]) <= 0.02
                      and max(abs(a - b) for a, b in zip(g["box"], w["box"])) <= 2.0), None)
        if match is None:
            assert w["score"] < THRESHOLD + 0.02, f"{w} not found in {got}"
            continue
        unmatched.remove(match)
    for g in unmatched:
        assert g["score"] < THRESHOLD + 0.02, f"{g} is not in {want}"


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_avx2_engine_runs_on_an_avx2_only_cpu(tmp_path, precision):
    require_fixtures()
    model = MODEL if precision == "float32" else make_qdq_model(tmp_path)
    engine = tmp_path / "avx2.engine"
    run_detrq("build-engine", "--onnx" if precision == "float32" else "--qdq", model, "--output", engine,
              "--backend", "cpu", "--cpu-features", "avx2,fma")

    # No packed state is laid out for a wider ISA; each needs at most the target, and the header lists
    # exactly what they need.
    doc = engine_document(engine)
    assert doc["engine"]["precision"] == precision
    layouts = {s["layout"] for s in doc["model"]["packed_states"].values()}
    assert not any("avx512" in layout for layout in layouts), layouts
    if precision == "int8":
        # The int8 MatMuls were packed for AVX2: its signed-byte path, or int16 for weights holding a -128.
        assert layouts & {"int8-gemm-w/1 isa=avx2-s8", "int8-gemm-w/1 isa=avx2"}, layouts
    needs = set()
    for key, state in doc["model"]["packed_states"].items():
        assert set(state["cpu_features"]) <= TARGET, (key, state["layout"], state["cpu_features"])
        needs |= set(state["cpu_features"])
    assert set(doc["engine"]["cpu_features"]) == needs
    assert set(doc["engine"]["target_features"]) == TARGET

    shown = run_detrq("inspect", engine).stdout
    assert "target: avx2, fma" in shown, shown
    assert ("requires: avx2" if precision == "int8" else "requires: none") in shown, shown
    assert json.loads(run_detrq("--json", "inspect", engine).stdout)["cpu_target"] == ["avx2", "fma"]

    if QEMU is None:
        pytest.skip("qemu-x86_64 (Debian qemu-user, installed by scripts/setup.sh) is absent: cannot run the "
                    "engine on an emulated AVX2-only CPU")
    image = os.path.join(VAL, sorted(n for n in os.listdir(VAL) if n.endswith(".jpg"))[0])
    want = detections(run_detrq("detect", "--onnx", model, image).stdout)
    assert want, "the ONNX detects nothing on the image: nothing to compare"
    # The emulated CPU truly lacks AVX-512 (asking for it is refused before anything loads).
    r = emulated("run", MODEL, "--input", "x=unused.bin", "--output-dir", tmp_path / "out", "--cpu-features", "avx512f",
                 expect=4)
    assert "--cpu-features: this CPU lacks avx512f" in r.stderr, r.stderr
    got = detections(emulated("detect", "--engine", engine, "--threads", 2, image).stdout)
    assert_same_detections(want, got)


def emulated(*args, expect=0):
    """detrq on an emulated Haswell (AVX2, FMA; no AVX-512)."""
    r = subprocess.run([QEMU, "-cpu", "Haswell-v4", DETRQ, *map(str, args)], capture_output=True, text=True,
                       timeout=1200)
    assert r.returncode == expect, f"qemu -cpu Haswell-v4 detrq {' '.join(map(str, args))} -> {r.returncode}\n{r.stderr}"
    return r


def test_cpu_features_narrow_detect_eval_and_calibrate(tmp_path):
    """`--cpu-features` on detect, eval and calibrate: a narrowing this CPU runs gives the same detections as
    its full target (here, natively); a feature it lacks is refused before any work, exit 4."""
    require_fixtures()
    image = os.path.join(VAL, sorted(n for n in os.listdir(VAL) if n.endswith(".jpg"))[0])
    host = set(json.loads(run_detrq("--json", "inspect", MODEL).stdout)["cpu_target"])
    want = detections(run_detrq("detect", "--onnx", MODEL, image).stdout)
    for narrowed in ["none", "avx2,fma"]:
        if narrowed != "none" and not set(narrowed.split(",")) <= host:
            continue
        assert_same_detections(want, detections(run_detrq("detect", "--onnx", MODEL, "--cpu-features", narrowed,
                                                          image).stdout))
    lacking = next((f for f in ["amx-int8", "amx-bf16", "avx512bf16", "avx512vnni", "avx2"] if f not in host), None)
    if lacking is None:
        pytest.skip("this CPU has every feature the refusal checks could ask for")
    for args in (["detect", "--onnx", MODEL, image],
                 ["eval", "--onnx", MODEL, "--images", VAL, "--annotations", os.path.join(VAL, "instances.json")],
                 ["calibrate", "--onnx", MODEL, "--images", VAL, "--count", 1, "--cache-path", tmp_path / "c.cache"]):
        r = run_detrq(*args, "--cpu-features", lacking, check=False)
        assert r.returncode == 4, (args[0], r.stderr)
        assert f"detrq: error: --cpu-features: this CPU lacks {lacking}" in r.stderr, r.stderr
