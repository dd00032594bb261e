"""`detrq prepare`'s defaults as the seed pipeline's users know them: with --hf-repo, RF-DETR small exported from
PyTorch and 100 COCO val2017 calibration images; without it (or with --onnx), the model the project ships. Every
dry run here starts in an empty folder outside the checkout, where the shipped files must still be found."""
import json
import os
import shutil
import subprocess

DETRQ = os.environ["DETRQ_BIN"]


def dry_run(cwd, *args):
    r = subprocess.run([DETRQ, "--json", "prepare", "--dry-run", *args], cwd=cwd, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, f"prepare {' '.join(args)} --dry-run -> {r.returncode}\n{r.stderr}"
    return {s["name"]: s for s in json.loads(r.stdout)["steps"]}


def python_has(module):
    """Asked of the Python the export would run under (uv's when uv is on PATH, as detrq does), not of detrq."""
    python = ["uv", "run", "python"] if shutil.which("uv") else ["python3"]
    r = subprocess.run([*python, "-c", f"import importlib.util, sys; sys.exit(importlib.util.find_spec('{module}') is None)"],
                       capture_output=True)
    return r.returncode == 0


def test_hf_repo_alone_exports_rfdetr_small_and_calibrates_on_100_coco_images(tmp_path):
    steps = dry_run(tmp_path, "--hf-repo", "test-org/test-model")
    export = steps["export"]
    assert export["status"] == "would run", export
    assert export["parameters"]["model_variant"] == "small"
    script = export["command"].split()[export["command"].split().index("--output") - 1]
    assert os.path.basename(script) == "export_onnx.py" and os.path.isfile(script), export["command"]
    fetch = steps["fetch-calibration-images"]
    assert fetch["status"] == "would run", fetch
    assert fetch["parameters"]["count"] == "100" and "COCO val2017" in fetch["description"]
    assert steps["calibrate"]["inputs"][0] == export["outputs"][0]  # the exported model, not the shipped one
    assert steps["upload"]["status"] == "would run"
    assert list(tmp_path.iterdir()) == [], "a dry run must not touch anything"


def test_dry_run_says_the_export_needs_pytorch_and_whether_it_is_installed(tmp_path):
    description = dry_run(tmp_path, "--hf-repo", "test-org/test-model")["export"]["description"]
    assert "needs PyTorch" in description
    for module in ("torch", "rfdetr", "transformers"):
        state = "installed" if python_has(module) else "NOT installed"
        assert f"{module} {state}" in description, description


def test_model_variant_is_passed_to_the_export(tmp_path):
    export = dry_run(tmp_path, "--hf-repo", "test-org/test-model", "--model-variant", "base")["export"]
    assert export["parameters"]["model_variant"] == "base"
    assert "--model-variant base" in export["command"]


def test_without_hf_repo_the_shipped_model_is_found_from_any_folder(tmp_path):
    steps = dry_run(tmp_path, "--skip-upload")
    assert steps["export"]["status"] == "skipped"
    model = steps["export"]["outputs"][0]
    assert os.path.basename(model) == "rfdetr_shapes.onnx" and os.path.isfile(model)
    calibration = steps["fetch-calibration-images"]["outputs"][0]
    assert steps["fetch-calibration-images"]["status"] == "skipped" and os.path.isdir(calibration)
    assert os.path.isfile(steps["evaluate"]["inputs"][-1])  # the shipped validation set's instances.json
    assert "needs PyTorch" not in steps["export"]["description"]


def test_explicit_onnx_with_hf_repo_is_used_as_given(tmp_path):
    shipped = dry_run(tmp_path, "--skip-upload")["export"]["outputs"][0]
    steps = dry_run(tmp_path, "--hf-repo", "test-org/test-model", "--onnx", shipped)
    assert steps["export"]["status"] == "skipped" and steps["export"]["reason"] == "--onnx given"
    assert steps["calibrate"]["inputs"][0] == shipped
