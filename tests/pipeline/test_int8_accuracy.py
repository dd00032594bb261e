"""Issue 7's accuracy bar: the Q/DQ model of models/rfdetr_shapes.onnx, run in detrq, loses at most 1 AP
point against FP32 on data/shapes_val. The Q/DQ model comes from the embedded default pipeline, the
README's first command (`detrq prepare --skip-upload`), so this also runs that command end to end."""
import json

from conftest import MODEL, VAL, check_card_against_run, require_fixtures, run_detrq


def test_qdq_model_loses_at_most_one_ap_point(tmp_path):
    require_fixtures()
    work = tmp_path / "work"
    prepare = run_detrq("--json", "prepare", "--skip-upload", "--work-dir", work)
    steps = {s["name"]: s["status"] for s in json.loads(prepare.stdout)["steps"]}
    assert steps["calibrate"] == "ran" and steps["evaluate"] == "ran"
    accuracy = json.loads((work / "accuracy.json").read_text())
    assert accuracy["images"] >= 200
    fp32, int8 = accuracy["fp32"], accuracy["int8"]
    assert fp32["AP50"] >= 0.5, "the FP32 model itself does not detect: the comparison would mean nothing"
    assert int8["AP"] >= fp32["AP"] - 0.01, f"INT8 AP {int8['AP']:.4f} vs FP32 {fp32['AP']:.4f}"
    # `detrq eval --compare` runs the same code path; on a few images it agrees that INT8 tracks FP32.
    r = run_detrq("--json", "eval", "--onnx", MODEL, "--compare", work / "inference_model.qdq.onnx", "--images", VAL,
                  "--annotations", f"{VAL}/instances.json", "--max-images", "10")
    ev = json.loads(r.stdout)
    assert ev["images"] == 10 and len(ev["results"]) == 2
    assert abs(ev["change"]["AP50"]) < 0.05
    # The card against the run log, the tensors written and the model itself; its AP figures from the log.
    card = (work / "README.md").read_text()
    assert "AP FP32" in prepare.stderr, prepare.stderr
    check_card_against_run(card, prepare.stderr, work)
