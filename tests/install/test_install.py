"""The installed tree as a user gets it: `cmake --install` into a temporary prefix, moved elsewhere (so no path
recorded at install time can help), then used from another folder with the source tree hidden behind an empty
tmpfs (a private mount namespace): the installed `detrq` dry-runs `prepare` and detects objects in a shipped
image, and another project's five-line program builds against `find_package(detrq)` and runs."""
import json
import os
import shutil
import subprocess

import pytest

SOURCE = os.path.realpath(os.environ["DETRQ_SOURCE_DIR"])
BUILD = os.environ["DETRQ_BUILD_DIR"]
CMAKE = os.environ.get("DETRQ_CMAKE", "cmake")
HERE = os.path.dirname(os.path.abspath(__file__))
IMAGE = "shape_1_00000.jpg"


def hiding_source():
    """The command prefix that runs a command with SOURCE replaced by an empty folder, or None where this host
    cannot make a private mount namespace (then the static check below is all that guards it)."""
    for prefix in (["unshare", "--mount"], ["unshare", "--user", "--map-root-user", "--mount"]):
        probe = [*prefix, "sh", "-c", f'mount -t tmpfs tmpfs "{SOURCE}" && test -z "$(ls -A "{SOURCE}")"']
        if shutil.which("unshare") and subprocess.run(probe, capture_output=True).returncode == 0:
            return [*prefix, "sh", "-c", f'mount -t tmpfs tmpfs "{SOURCE}" && exec "$@"', "hide-source"]
    return None


HIDE = hiding_source()


def run(args, cwd, env=None, timeout=600):
    r = subprocess.run([*(HIDE or []), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, args))} -> {r.returncode}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("install")
    assert not str(tmp).startswith(SOURCE + os.sep), "the temporary folder must be outside the source tree"
    r = subprocess.run([CMAKE, "--install", BUILD, "--prefix", tmp / "first"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    moved = tmp / "moved"
    shutil.move(tmp / "first", moved)
    return moved


def test_layout(prefix):
    for path in ["bin/detrq", "share/detrq/models/rfdetr_shapes.onnx", "share/detrq/scripts/export_onnx.py",
                 f"share/detrq/data/shapes_val/{IMAGE}", "share/detrq/data/shapes_val/instances.json",
                 "share/detrq/data/shapes_calib", "share/detrq/data/coco_val2017_calibration_ids.txt",
                 "include/detrq/runtime/session.h", "lib/libdetrq.a", "lib/cmake/detrq/detrqConfig.cmake",
                 "lib/cmake/detrq/detrqConfigVersion.cmake", "lib/cmake/detrq/detrqTargets.cmake"]:
        assert os.path.exists(prefix / path), path
    assert os.access(prefix / "bin/detrq", os.X_OK) and os.access(prefix / "share/detrq/scripts/export_onnx.py", os.X_OK)
    assert len(os.listdir(prefix / "share/detrq/data/shapes_calib")) == len(os.listdir(os.path.join(SOURCE, "data/shapes_calib")))


def contents_without_debug_information(path, tmp_path):
    """The file's bytes; for an executable without its debug sections (a debug build's DWARF names the sources
    for debuggers, which uses none of them)."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"\x7fELF"):
        stripped = tmp_path / "stripped"
        subprocess.run(["objcopy", "--strip-debug", path, stripped], check=True)
        data = stripped.read_bytes()
    return data


def test_no_installed_file_names_the_source_or_build_tree(prefix, tmp_path):
    """The executable, the package config and the data: none may lead back to where detrq was built (a path
    in an assertion message included: found by the first fresh-Debian run, whose build had no ccache to make
    __FILE__ relative). The static library is left out: its objects' debug information names sources."""
    for folder, _, files in os.walk(prefix):
        for name in files:
            path = os.path.join(folder, name)
            assert not os.path.islink(path), f"{path} is a link"
            if not name.endswith(".a"):
                assert SOURCE.encode() not in contents_without_debug_information(path, tmp_path), f"{path} names {SOURCE}"


def test_installed_detrq_dry_runs_prepare_from_another_folder(prefix, tmp_path):
    r = run([prefix / "bin/detrq", "--json", "prepare", "--hf-repo", "test-org/test-model", "--dry-run"], cwd=tmp_path)
    steps = {s["name"]: s for s in json.loads(r.stdout)["steps"]}
    assert steps["export"]["status"] == "would run"
    assert str(prefix / "share/detrq/scripts/export_onnx.py") in steps["export"]["command"]
    assert "needs PyTorch" in steps["export"]["description"]
    r = run([prefix / "bin/detrq", "--json", "prepare", "--skip-upload", "--dry-run"], cwd=tmp_path)
    steps = {s["name"]: s for s in json.loads(r.stdout)["steps"]}
    assert steps["calibrate"]["inputs"][0] == str(prefix / "share/detrq/models/rfdetr_shapes.onnx")
    assert list(tmp_path.iterdir()) == []


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return w * h / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h)


def test_installed_detrq_detects_the_shapes_in_a_shipped_image(prefix, tmp_path):
    val = prefix / "share/detrq/data/shapes_val"
    r = run([prefix / "bin/detrq", "detect", "--onnx", prefix / "share/detrq/models/rfdetr_shapes.onnx", val / IMAGE,
             "--threshold", "0.5", "--out", "drawn"], cwd=tmp_path)
    (result,) = json.loads(r.stdout)
    assert os.path.getsize(tmp_path / "drawn" / IMAGE.replace(".jpg", ".png")) > 0
    # Against the labels: every ground-truth shape of the image is found, with its class, at IoU >= 0.5.
    gt = json.load(open(val / "instances.json"))
    (image,) = [im for im in gt["images"] if im["file_name"] == IMAGE]
    truths = [a for a in gt["annotations"] if a["image_id"] == image["id"]]
    assert truths
    for a in truths:
        x, y, w, h = a["bbox"]
        assert any(d["category_id"] == a["category_id"] and iou(d["box"], [x, y, x + w, y + h]) >= 0.5
                   for d in result["detections"]), (a, result["detections"])


def test_another_project_builds_against_the_installed_package(prefix, tmp_path):
    shutil.copytree(os.path.join(HERE, "consumer"), tmp_path / "consumer")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CMAKE_")}
    generator = ["-G", "Ninja"] if shutil.which("ninja") else []
    run([CMAKE, "-S", tmp_path / "consumer", "-B", tmp_path / "build", *generator, f"-DCMAKE_PREFIX_PATH={prefix}",
         "-DCMAKE_BUILD_TYPE=Release"], cwd=tmp_path, env=env)
    run([CMAKE, "--build", tmp_path / "build"], cwd=tmp_path, env=env)
    r = run([tmp_path / "build" / "count_outputs", prefix / "share/detrq/models/rfdetr_shapes.onnx"], cwd=tmp_path)
    assert r.stdout.split() == ["dets", "labels"]


def test_the_source_tree_was_hidden():
    """Says which of the two guards ran; the hidden runs are the stronger one."""
    if HIDE is None:
        pytest.skip("this host cannot make a private mount namespace (unshare): the installed tree was used with "
                    "the source tree in place, guarded by the check that no installed file names it")
