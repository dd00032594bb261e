"""list_models and model_info's card data, tags and files from the real huggingface_hub against detrq
hub-server (issue 18: GET /api/models answered 404, model_info had no cardData and no tags). The expected
card data is PyYAML's reading of the card's front matter, the reader huggingface_hub itself uses."""
import json

from conftest import READ_TOKEN, WRITE_TOKEN, hub_env, run_hf

FRONT_MATTER = """\
license: apache-2.0
library_name: detrq
pipeline_tag: object-detection
base_model: roboflow/rf-detr-small   # a comment
datasets: [detection-datasets/coco, 'acme/shapes']
language:
- en
tags:
- object-detection
- rf-detr
- int8
evaluations:
  - name: rfdetr_shapes INT8
    results:
      - task: {type: object-detection}
        metrics:
          - type: mAP
            value: 0.687
            name: "AP (COCO, 0.50:0.95)"
          - {type: AP50, value: 0.814}
thresholds:
  score: 0.5
  calibrated: true
  held_out: 8
  note: ~
description: >
  Calibrated on 30 images,
  2 held out.
"""
CARD = "---\n" + FRONT_MATTER + "---\n\n# rfdetr_shapes\n\nThe body: not front matter.\n---\nnor this\n"


def setup_code():
    return f"""
from huggingface_hub import HfApi
api = HfApi()
for repo, private in (("acme/detector", False), ("acme/secret", True), ("other/plain", False)):
    api.create_repo(repo, private=private)
for repo in ("acme/detector", "acme/secret"):
    api.upload_file(path_or_fileobj={CARD.encode()!r}, path_in_repo="README.md", repo_id=repo)
print(api.upload_file(path_or_fileobj=b"weights", path_in_repo="model.onnx", repo_id="acme/detector").oid)
"""


def query_code():
    return """
import json
from huggingface_hub import HfApi
api = HfApi()
def ids(**kw):
    return [m.id for m in api.list_models(**kw)]
out = {"all": ids(), "author": ids(author="acme"), "search": ids(search="DETECT"), "filter": ids(filter="rf-detr"),
       "two_filters": ids(filter=["rf-detr", "license:mit"]), "limit": ids(limit=1)}
listed = {m.id: m for m in api.list_models(cardData=True)}
out["listed_card"] = listed["acme/detector"].card_data.to_dict()
out["listed_tags"] = listed["acme/detector"].tags
out["plain_card"] = listed["other/plain"].card_data
full = {m.id: m for m in api.list_models(full=True)}
out["full_files"] = sorted(s.rfilename for s in full["acme/detector"].siblings)
info = api.model_info("acme/detector")
out["card"] = info.card_data.to_dict()
out["tags"] = info.tags
out["library_name"] = info.library_name
out["pipeline_tag"] = info.pipeline_tag
out["id"] = info.id
out["sha"] = info.sha
out["private"] = info.private
out["files"] = sorted(s.rfilename for s in info.siblings)
out["last_modified"] = info.last_modified.isoformat() if info.last_modified else None
print(json.dumps(out))
"""


def test_list_models_and_model_info_serve_the_card_as_the_hub_does(hub_server, tmp_path):
    import yaml

    env = hub_env(hub_server.endpoint, tmp_path / "w", WRITE_TOKEN, HF_HUB_DISABLE_XET="1")
    r = run_hf(env, setup_code())
    assert r.returncode == 0, r.stdout + r.stderr
    head = r.stdout.split()[-1]  # the commit of the last upload

    r = run_hf(hub_env(hub_server.endpoint, tmp_path / "anon"), query_code())
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    expected_card = yaml.safe_load(FRONT_MATTER)
    assert out["card"] == expected_card
    assert out["listed_card"] == expected_card
    assert out["plain_card"] is None
    assert out["tags"] == ["object-detection", "rf-detr", "int8", "detrq", "dataset:detection-datasets/coco",
                           "dataset:acme/shapes", "base_model:roboflow/rf-detr-small", "en", "license:apache-2.0"]
    assert out["listed_tags"] == out["tags"]
    assert out["library_name"] == "detrq" and out["pipeline_tag"] == "object-detection"
    assert out["id"] == "acme/detector" and out["sha"] == head and out["private"] is False
    assert out["files"] == out["full_files"] == [".gitattributes", "README.md", "model.onnx"]
    assert out["last_modified"] is not None
    # Without a token the private repository is not listed.
    assert out["all"] == ["acme/detector", "other/plain"]
    assert out["author"] == ["acme/detector"]
    assert out["search"] == ["acme/detector"]
    assert out["filter"] == ["acme/detector"]
    assert out["two_filters"] == []
    assert out["limit"] == ["acme/detector"]

    r = run_hf(hub_env(hub_server.endpoint, tmp_path / "reader", READ_TOKEN), query_code())
    assert r.returncode == 0, r.stdout + r.stderr
    out = json.loads(r.stdout)
    assert out["all"] == ["acme/detector", "acme/secret", "other/plain"]
    assert out["author"] == ["acme/detector", "acme/secret"]


def test_list_models_with_a_refused_token_is_refused(hub_server, tmp_path):
    code = """
from huggingface_hub import HfApi
from huggingface_hub.errors import HfHubHTTPError
try:
    list(HfApi().list_models())
except HfHubHTTPError as e:
    print(e.response.status_code)
"""
    r = run_hf(hub_env(hub_server.endpoint, tmp_path / "bad", "hf_not_a_token_this_hub_knows"), code)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip() == "401"
