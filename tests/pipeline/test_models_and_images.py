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


def detect(*args):
    r = run_detrq("detect", "--onnx", MODEL, "--threads", "2", *map(str, args), check=False)
    return r, (json.loads(r.stdout) if r.stdout.strip() else None)


def test_detect_takes_folders_in_file_name_order(tmp_path):
    require_fixtures()
    folder = tmp_path / "photos"
    folder.mkdir()
    images = first_val_images(3)
    for i, path in enumerate(reversed(images)):  # names sort in the other order than the sources
        shutil.copy(path, folder / f"{i}_{os.path.basename(path)}")
    (folder / "notes.txt").write_text("not an image, and not named like one: not read")
    r, from_folder = detect(folder, "--output-dir", tmp_path / "drawn")
    assert r.returncode == 0, r.stderr
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))
    assert [e["image"] for e in from_folder] == [str(folder / n) for n in names]
    assert sorted(os.listdir(tmp_path / "drawn")) == sorted(n[:-4] + ".png" for n in names)
    # The same detections as for the files named one by one.
    r, from_files = detect(*[folder / n for n in names])
    assert r.returncode == 0, r.stderr
    assert [e["detections"] for e in from_folder] == [e["detections"] for e in from_files]
    assert all(e["detections"] for e in from_files)


def test_detect_names_a_bad_image_keeps_the_good_results_and_exits_1(tmp_path):
    require_fixtures()
    good = first_val_images(2)
    bad = tmp_path / "notimage.jpg"
    bad.write_text("this is text, not a JPEG")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(open(good[1], "rb").read()[:600])
    empty = tmp_path / "empty_folder"
    empty.mkdir()
    out = tmp_path / "drawn"
    r, results = detect(good[0], bad, truncated, empty, good[1], "--output-dir", out)
    assert r.returncode == 1, r.stderr
    assert [e["image"] for e in results] == good
    assert all(e["detections"] for e in results)
    lines = r.stderr.splitlines()
    assert any(line.startswith(f"detrq: error: {bad}: ") for line in lines), r.stderr
    assert any(line.startswith(f"detrq: error: {truncated}: ") for line in lines), r.stderr
    assert any(line.startswith(f"detrq: error: {empty}: no image") for line in lines), r.stderr
    assert "3 of the inputs failed" in r.stderr, r.stderr
    assert sorted(os.listdir(out)) == sorted(os.path.basename(p)[:-4] + ".png" for p in good)
    # The good results are the ones detect gives those images alone.
    r, alone = detect(*good)
    assert r.returncode == 0 and [e["detections"] for e in alone] == [e["detections"] for e in results]


def test_detect_never_draws_one_image_over_another_of_the_same_name(tmp_path):
    require_fixtures()
    images = first_val_images(2)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(images[0], a / "photo.jpg")
    shutil.copy(images[1], b / "photo.jpg")
    out = tmp_path / "drawn"
    r, results = detect(a, b, "--output-dir", out)
    assert r.returncode == 0, r.stderr
    assert [e["drawn"] for e in results] == [str(out / "photo.png"), str(out / "photo_2.png")]
    assert sorted(os.listdir(out)) == ["photo.png", "photo_2.png"]
    from PIL import Image

    with Image.open(out / "photo.png") as first, Image.open(out / "photo_2.png") as second:
        assert first.size == (results[0]["width"], results[0]["height"])
        assert second.size == (results[1]["width"], results[1]["height"])
        assert first.tobytes() != second.tobytes()
