"""`detrq eval --detections` gives pycocotools' twelve numbers on the same annotations and detections."""
import contextlib
import io
import json
import os
import random
import subprocess

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

DETRQ = os.environ["DETRQ_BIN"]
SOURCE = os.environ["DETRQ_SOURCE_DIR"]
NAMES = ["AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large",
         "AR1", "AR10", "AR100", "AR_small", "AR_medium", "AR_large"]


def random_case(seed):
    """Ground truth and detections that exercise every branch: crowds, all size ranges, an annotation
    area unlike its box, images without objects, a category without objects, score ties, over 100
    detections on one image, an annotation with id 0 (pycocotools then counts its match as a miss)."""
    rng = random.Random(seed)
    images = [{"id": 1000 + i * 7, "file_name": f"{i}.jpg", "width": 640, "height": 480} for i in range(40)]
    categories = [{"id": c, "name": f"c{c}"} for c in (1, 2, 5, 9)]  # 9 never has ground truth
    anns, dets = [], []
    next_id = 0
    for n, img in enumerate(images):
        if n % 9 == 4:
            continue  # an image without objects
        for _ in range(rng.randint(1, 8)):
            w = rng.choice([rng.uniform(4, 30), rng.uniform(33, 95), rng.uniform(100, 300)])
            h = w * rng.uniform(0.5, 1.5)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            cat = rng.choice([1, 2, 5])
            crowd = 1 if rng.random() < 0.06 else 0
            area = w * h * rng.uniform(0.6, 1.0)  # a segmentation covers less than its box
            anns.append({"id": next_id, "image_id": img["id"], "category_id": cat,
                         "bbox": [x, y, w, h], "area": area, "iscrowd": crowd})
            next_id += 1
            for _ in range(rng.choice([0, 1, 1, 1, 2])):  # missed, found, found twice
                j = [rng.gauss(0, 0.08 * w), rng.gauss(0, 0.08 * h), rng.gauss(0, 0.1 * w), rng.gauss(0, 0.1 * h)]
                dets.append({"image_id": img["id"], "category_id": cat if rng.random() < 0.9 else rng.choice([1, 2, 5, 9]),
                             "bbox": [x + j[0], y + j[1], max(1.0, w + j[2]), max(1.0, h + j[3])],
                             "score": round(rng.random(), 2)})  # rounding makes ties
        for _ in range(rng.randint(0, 5)):  # false positives anywhere
            w, h = rng.uniform(5, 200), rng.uniform(5, 200)
            dets.append({"image_id": img["id"], "category_id": rng.choice([1, 2, 5, 9]),
                         "bbox": [rng.uniform(0, 500), rng.uniform(0, 400), w, h], "score": round(rng.random(), 2)})
    crowded = images[1]["id"]
    for _ in range(130):  # past maxDets = 100
        dets.append({"image_id": crowded, "category_id": 1, "bbox": [rng.uniform(0, 600), rng.uniform(0, 440), 20, 20],
                     "score": rng.random()})
    return {"images": images, "categories": categories, "annotations": anns}, dets


def pycocotools_stats(gt_path, dt_path):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_path))
        dt = gt.loadRes(str(dt_path))
        ev = COCOeval(gt, dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return list(ev.stats)


def detrq_stats(gt_path, dt_path):
    r = subprocess.run([DETRQ, "--json", "eval", "--detections", str(dt_path), "--annotations", str(gt_path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    metrics = json.loads(r.stdout)["results"][0]["metrics"]
    return [metrics[n] for n in NAMES]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_case_matches_pycocotools(tmp_path, seed):
    gt, dets = random_case(seed)
    gt_path, dt_path = tmp_path / "instances.json", tmp_path / "dets.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps(dets))
    expected = pycocotools_stats(gt_path, dt_path)
    got = detrq_stats(gt_path, dt_path)
    assert 0.05 < expected[0] < 0.95  # a case that can tell right from wrong
    for name, e, g in zip(NAMES, expected, got):
        assert g == pytest.approx(e, abs=1e-12), name


def test_shipped_validation_set_matches_pycocotools(tmp_path):
    """On the project's own validation annotations (data/shapes_val), with detections made from them."""
    path = os.path.join(SOURCE, "data", "shapes_val", "instances.json")
    if not os.path.exists(path):
        pytest.skip("data/shapes_val has not landed")
    gt = json.load(open(path))
    rng = random.Random(5)
    dets = []
    for a in gt["annotations"]:
        x, y, w, h = a["bbox"]
        if rng.random() < 0.85:
            dets.append({"image_id": a["image_id"], "category_id": a["category_id"],
                         "bbox": [x + rng.gauss(0, 2), y + rng.gauss(0, 2), w * rng.uniform(0.85, 1.1), h * rng.uniform(0.85, 1.1)],
                         "score": rng.random()})
    dt_path = tmp_path / "dets.json"
    dt_path.write_text(json.dumps(dets))
    expected = pycocotools_stats(path, dt_path)
    got = detrq_stats(path, dt_path)
    for name, e, g in zip(NAMES, expected, got):
        assert g == pytest.approx(e, abs=1e-12), name


def test_unknown_image_is_refused(tmp_path):
    gt, _ = random_case(1)
    gt_path, dt_path = tmp_path / "instances.json", tmp_path / "dets.json"
    gt_path.write_text(json.dumps(gt))
    dt_path.write_text(json.dumps([{"image_id": 5, "category_id": 1, "bbox": [0, 0, 1, 1], "score": 1.0}]))
    r = subprocess.run([DETRQ, "eval", "--detections", str(dt_path), "--annotations", str(gt_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 3
    assert "image id 5" in r.stderr
