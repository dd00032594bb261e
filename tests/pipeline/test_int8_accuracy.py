"""Issue 7's accuracy bar: the Q/DQ model of models/rfdetr_shapes.onnx, run in detrq, loses at most 1 AP
point against FP32 on data/shapes_val. The Q/DQ model comes from the embedded default pipeline, the
README's first command (`detrq prepare --skip-upload`), so this also runs that command end to end; the
card's metrics table is checked against pycocotools on each model's detections, saved by `detrq eval`."""
import contextlib
import io
import json
import re

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
    check_card_metrics_against_pycocotools(card, work, tmp_path)


METRICS = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large", "AR1", "AR10", "AR100", "AR_small", "AR_medium",
           "AR_large"]


def pycocotools_stats(annotations, detections):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(annotations)
        ev = COCOeval(gt, gt.loadRes(str(detections)), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return list(ev.stats)


def check_card_metrics_against_pycocotools(card, work, tmp_path):
    """Every row of the card's metrics table (FP32, INT8 and the change) against pycocotools' numbers on the
    detections each model gives the whole evaluation set."""
    annotations = f"{VAL}/instances.json"
    stats = {}
    for kind, model in (("fp32", MODEL), ("int8", work / "inference_model.qdq.onnx")):
        saved = tmp_path / f"{kind}_detections.json"
        run_detrq("eval", "--onnx", model, "--images", VAL, "--annotations", annotations, "--save-detections", saved)
        stats[kind] = pycocotools_stats(annotations, saved)
    names = [line.split("|")[1].strip() for line in card.splitlines() if re.match(r"\| AR?\w* \| \d", line)]
    assert names and set(names) <= set(METRICS) and names[:3] == ["AP", "AP50", "AP75"], card
    for name in names:
        i = METRICS.index(name)
        row = next(line for line in card.splitlines() if line.startswith(f"| {name} | "))
        fp32, int8, change = (float(c) for c in row.strip("|").split("|")[1:4])
        assert abs(fp32 - stats["fp32"][i]) <= 5e-5 + 1e-9, (name, row, stats["fp32"][i])
        assert abs(int8 - stats["int8"][i]) <= 5e-5 + 1e-9, (name, row, stats["int8"][i])
        assert abs(change - (stats["int8"][i] - stats["fp32"][i])) <= 1e-4 + 1e-9, (name, row)
