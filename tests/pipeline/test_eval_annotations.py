"""Annotations that do not describe the images they are given (issue 16: `--eval-annotations` that do not
match the images) are refused with an error naming the annotations file and the first image that does not
match, exit 3: an image they list that is not in the folder (another image set), or one whose size is not
the width and height they give (same file names, other pictures). `detrq eval` finds it before it detects
anything, `detrq prepare` before its first step (a dry run included)."""
import json
import os
import shutil

from PIL import Image

from conftest import CALIB, MODEL, VAL, require_fixtures, run_detrq, val_subset


def test_eval_refuses_annotations_of_another_image_set(tmp_path):
    require_fixtures()
    annotations = os.path.join(VAL, "instances.json")
    first = json.load(open(annotations))["images"][0]["file_name"]
    assert not os.path.exists(os.path.join(CALIB, first))  # the two shipped sets name their images apart
    r = run_detrq("eval", "--onnx", MODEL, "--images", CALIB, "--annotations", annotations, check=False)
    assert r.returncode == 3, r.stderr
    assert annotations in r.stderr and f"'{first}'" in r.stderr and CALIB in r.stderr, r.stderr
    assert "evaluating" not in r.stderr  # refused before any image ran


def test_eval_refuses_an_image_whose_size_the_annotations_do_not_give(tmp_path):
    require_fixtures()
    subset = val_subset(tmp_path, 3)
    images = json.load(open(subset))["images"]
    folder = tmp_path / "images"
    folder.mkdir()
    for im in images:
        shutil.copy(os.path.join(VAL, im["file_name"]), folder / im["file_name"])
    # The second image replaced by another picture under the same name, 10 pixels wider.
    second = images[1]
    Image.new("RGB", (second["width"] + 10, second["height"]), (90, 90, 90)).save(folder / second["file_name"])
    r = run_detrq("eval", "--onnx", MODEL, "--images", folder, "--annotations", subset, check=False)
    assert r.returncode == 3, r.stderr
    assert str(subset) in r.stderr and f"'{second['file_name']}'" in r.stderr, r.stderr
    assert f"{second['width'] + 10}x{second['height']}" in r.stderr and f"{second['width']}x{second['height']}" in r.stderr
    assert images[0]["file_name"] not in r.stderr  # the first one matched


def test_prepare_refuses_mismatched_eval_annotations_before_any_step(tmp_path):
    require_fixtures()
    annotations = os.path.join(VAL, "instances.json")
    first = json.load(open(annotations))["images"][0]["file_name"]
    for extra in (["--dry-run"], []):
        work = tmp_path / ("dry" if extra else "run")
        r = run_detrq("prepare", "--onnx", MODEL, "--skip-upload", "--calibration-dir", CALIB, "--work-dir", work,
                      "--eval-images", CALIB, "--eval-annotations", annotations, *extra, check=False, timeout=120)
        assert r.returncode == 3, r.stderr
        assert annotations in r.stderr and f"'{first}'" in r.stderr, r.stderr
        assert not (work / "calibration.json").exists()
