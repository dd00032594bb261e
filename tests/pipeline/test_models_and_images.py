"""Which model files and images each command takes (issue 18): every command that takes a model takes an ONNX
model and an engine file, or names the kind it got; `detect` takes folders, and a bad image among good ones
is named while the good results are kept."""
import json
import os
import shutil

import pytest

from conftest import MODEL, VAL, require_fixtures, run_detrq

SOURCE = os.environ["DETRQ_SOURCE_DIR"]
TINY = os.path.join(SOURCE, "tests", "data", "rfdetr_tiny.onnx")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """A CPU engine of the shipped model, built by `detrq build-engine` from its FP32 ONNX."""
    require_fixtures()
    out = tmp_path_factory.mktemp("engine") / "rfdetr_shapes.engine"
    run_detrq("build-engine", "--onnx", MODEL, "--output", out, "--backend", "cpu", "--threads", "2")
    with open(out, "rb") as f:
        assert f.read(8) == b"DETRQENG"
    return out


def first_val_images(n):
    return [os.path.join(VAL, name) for name in sorted(os.listdir(VAL)) if name.endswith(".jpg")][:n]


def test_run_takes_an_engine_and_gives_the_onnx_models_outputs(tmp_path, engine):
    import numpy as np

    tensor = tmp_path / "input.npy"
    rng = np.random.default_rng(0)
    np.save(tensor, rng.standard_normal((1, 3, 512, 512)).astype(np.float32))
    outputs = {}
    for kind, model in (("onnx", MODEL), ("engine", engine)):
        out = tmp_path / kind
        r = run_detrq("--json", "run", model, "--input", f"input={tensor}", "--output-dir", out, "--threads", "2")
        names = json.loads(r.stdout)["outputs"]
        assert set(names) == {"dets", "labels"}, names
        outputs[kind] = {n: np.load(out / f"{n}.npy") for n in names}
    for name, value in outputs["onnx"].items():
        assert outputs["engine"][name].shape == value.shape
        # The FP32 engine runs the same plan as the ONNX model on the same CPU.
        assert np.allclose(outputs["engine"][name], value, atol=1e-4), name


def test_inspect_takes_both_kinds(engine):
    j = json.loads(run_detrq("--json", "inspect", engine).stdout)
    assert j["engine_format"] >= 2 and j["precision"] == "float32", j
    j = json.loads(run_detrq("--json", "inspect", MODEL).stdout)
    assert [o["name"] for o in j["outputs"]] == ["dets", "labels"], j


def test_an_option_given_the_other_kind_of_model_names_what_it_got(tmp_path, engine):
    image = first_val_images(1)[0]
    r = run_detrq("detect", "--onnx", engine, image, check=False)
    assert r.returncode == 3, r.stderr
    assert r.stderr.startswith(f"detrq: error: {engine}: is a detrq engine file, not an ONNX model (give it as --engine)"), r.stderr
    r = run_detrq("detect", "--engine", MODEL, image, check=False)
    assert r.returncode == 3, r.stderr
    assert r.stderr.startswith(f"detrq: error: {MODEL}: is not a detrq engine file"), r.stderr
    assert "--onnx" in r.stderr, r.stderr
    annotations = os.path.join(VAL, "instances.json")
    r = run_detrq("eval", "--onnx", engine, "--images", VAL, "--annotations", annotations, check=False)
    assert r.returncode == 3 and "is a detrq engine file, not an ONNX model" in r.stderr, r.stderr
    r = run_detrq("eval", "--engine", MODEL, "--images", VAL, "--annotations", annotations, check=False)
    assert r.returncode == 3 and "is not a detrq engine file" in r.stderr, r.stderr
    # Commands that need the ONNX model itself say that an engine is one, not that it is a corrupt ONNX file.
    for args in (["calibrate", "--onnx", engine, "--images", VAL, "--cache", tmp_path / "c.cache"],
                 ["build-engine", "--qdq", engine, "--output", tmp_path / "again.engine", "--backend", "cpu"],
                 ["build-engine", "--onnx", engine, "--output", tmp_path / "again.engine", "--backend", "cpu"],
                 ["prepare", "--onnx", engine, "--skip-upload", "--work-dir", tmp_path / "work", "--dry-run"]):
        r = run_detrq(*args, check=False)
        assert r.returncode == 3, (args, r.stderr)
        assert f"{engine}: is a detrq engine file, not an ONNX model" in r.stderr, (args, r.stderr)
        assert "protobuf" not in r.stderr, (args, r.stderr)
    # A missing model is a file system error in detrq's format, whichever option names it.
    missing = tmp_path / "nonexistent.engine"
    for args in (["detect", "--engine", missing, image], ["detect", "--onnx", missing, image],
                 ["inspect", missing], ["run", missing, "--output-dir", tmp_path / "o"]):
        r = run_detrq(*args, check=False)
        assert r.returncode == 6, (args, r.stderr)
        assert r.stderr.startswith(f"detrq: error: {missing}"), (args, r.stderr)
