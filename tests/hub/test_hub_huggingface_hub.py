"""The real huggingface_hub (PyPI, pinned) against detrq hub-server, and the cache shared both ways.

Uploads here set HF_HUB_DISABLE_XET=1, so these tests cover the classic LFS path (what older servers and
clients speak); the Xet path is tests/hub/test_hub_xet.py. Downloads run without it: files uploaded over LFS
are served as LFS even to a client that has hf_xet."""
import hashlib
import json
import os
from pathlib import Path

from conftest import WRITE_TOKEN, hub_env, run_detrq, run_hf


def hf_env(server, home, token=WRITE_TOKEN, **extra):
    return hub_env(server.endpoint, home, token, **extra)


def check(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_huggingface_hub_creates_uploads_and_downloads(hub_server, tmp_path):
    big = tmp_path / "weights.bin"
    big.write_bytes(b"\0" + os.urandom(2_000_000))
    code = f"""
import json
from huggingface_hub import HfApi, hf_hub_download
api = HfApi()
url = api.create_repo("acme/py", exist_ok=False)
api.create_repo("acme/py", exist_ok=True)
a = api.upload_file(path_or_fileobj=b"hello detrq", path_in_repo="docs/readme.txt", repo_id="acme/py")
b = api.upload_file(path_or_fileobj={str(big)!r}, path_in_repo="weights.bin", repo_id="acme/py",
                    commit_message="weights")
info = api.model_info("acme/py")
print(json.dumps({{"url": str(url), "a": a.oid, "b": b.oid, "sha": info.sha,
                   "files": sorted(s.rfilename for s in info.siblings)}}))
"""
    out = json.loads(check(run_hf(hf_env(hub_server, tmp_path / "up", HF_HUB_DISABLE_XET="1"), code)))
    assert out["url"] == hub_server.endpoint + "/acme/py"
    assert out["sha"] == out["b"] != out["a"]
    assert out["files"] == [".gitattributes", "docs/readme.txt", "weights.bin"]

    code = """
from huggingface_hub import hf_hub_download
print(hf_hub_download("acme/py", "weights.bin"))
print(hf_hub_download("acme/py", "docs/readme.txt"))
"""
    paths = check(run_hf(hf_env(hub_server, tmp_path / "down", token=None), code)).split()
    assert Path(paths[0]).read_bytes() == big.read_bytes()
    assert Path(paths[1]).read_text() == "hello detrq"
    # Same commit and layout as detrq: the blob of the LFS file is its sha256.
    assert f"/snapshots/{out['sha']}/" in paths[0]
    assert os.path.basename(os.readlink(paths[0])) == hashlib.sha256(big.read_bytes()).hexdigest()


def test_a_file_detrq_pulled_is_found_by_huggingface_hub_offline(hub_server, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\0" + os.urandom(500_000))
    check(run_detrq(hf_env(hub_server, tmp_path / "p"), "publish", "--hf-repo", "acme/shared", "--file", str(model),
                    "--file", f"{model}:copy/model.onnx"))
    home = tmp_path / "home"
    check(run_detrq(hf_env(hub_server, home, token=None), "pull", "--hf-repo", "acme/shared"))
    hub_server.stop()
    code = """
from huggingface_hub import hf_hub_download, snapshot_download
print(hf_hub_download("acme/shared", "model.onnx"))
print(hf_hub_download("acme/shared", "copy/model.onnx"))
"""
    paths = check(run_hf(hf_env(hub_server, home, token=None, HF_HUB_OFFLINE="1"), code)).split()
    for p in paths:
        assert Path(p).read_bytes() == model.read_bytes()


def test_a_file_huggingface_hub_downloaded_is_found_by_detrq_offline(hub_server, tmp_path):
    code = """
from huggingface_hub import HfApi
api = HfApi()
api.create_repo("acme/other")
api.upload_file(path_or_fileobj=b"\\0binary" * 1000, path_in_repo="calibration.cache", repo_id="acme/other")
api.upload_file(path_or_fileobj=b"{}", path_in_repo="config.json", repo_id="acme/other")
"""
    check(run_hf(hf_env(hub_server, tmp_path / "up", HF_HUB_DISABLE_XET="1"), code))
    home = tmp_path / "home"
    code = """
from huggingface_hub import hf_hub_download
print(hf_hub_download("acme/other", "calibration.cache"))
print(hf_hub_download("acme/other", "config.json"))
"""
    hf_paths = check(run_hf(hf_env(hub_server, home, token=None), code)).split()
    hub_server.stop()
    r = run_detrq(hf_env(hub_server, home, token=None, HF_HUB_OFFLINE="1"), "pull", "--hf-repo", "acme/other",
                  "--files", "calibration.cache,config.json")
    assert r.returncode == 0, r.stderr
    snapshot = Path(r.stdout.strip())
    assert snapshot / "calibration.cache" == Path(hf_paths[0])
    assert (snapshot / "calibration.cache").read_bytes() == b"\0binary" * 1000
    assert (snapshot / "config.json").read_text() == "{}"


def test_huggingface_hub_errors_map_to_its_own_exceptions(hub_server, tmp_path):
    code = """
from huggingface_hub import HfApi, hf_hub_download
from huggingface_hub.errors import RepositoryNotFoundError, EntryNotFoundError, RevisionNotFoundError, HfHubHTTPError
api = HfApi()
api.create_repo("acme/err", private=True)
api.upload_file(path_or_fileobj=b"x", path_in_repo="x.txt", repo_id="acme/err")
for call, exc in [(lambda: hf_hub_download("acme/err", "missing.txt"), EntryNotFoundError),
                  (lambda: hf_hub_download("acme/err", "x.txt", revision="nope"), RevisionNotFoundError),
                  (lambda: hf_hub_download("acme/none", "x.txt"), RepositoryNotFoundError),
                  (lambda: hf_hub_download("acme/err", "x.txt", token=False), RepositoryNotFoundError)]:
    try:
        call()
        print("no error")
    except exc:
        print("ok")
"""
    out = check(run_hf(hf_env(hub_server, tmp_path / "h", HF_HUB_DISABLE_XET="1"), code)).split()
    assert out == ["ok"] * 4


def test_huggingface_hub_lists_the_tree_and_downloads_a_snapshot(hub_server, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\0" + os.urandom(100_000))
    check(run_detrq(hf_env(hub_server, tmp_path / "p"), "publish", "--hf-repo", "acme/snap", "--file",
                    f"{model}:onnx/model.onnx", "--file", f"{model}:onnx/int8/model.onnx"))
    code = """
from huggingface_hub import HfApi, snapshot_download
api = HfApi()
print(sorted(f.path for f in api.list_repo_tree("acme/snap")))
print(sorted(f.path for f in api.list_repo_tree("acme/snap", recursive=True)))
print(snapshot_download("acme/snap"))
"""
    lines = check(run_hf(hf_env(hub_server, tmp_path / "h", token=None), code)).splitlines()
    assert lines[0] == str([".gitattributes", "onnx"])
    assert lines[1] == str([".gitattributes", "onnx", "onnx/int8", "onnx/int8/model.onnx", "onnx/model.onnx"])
    snapshot = Path(lines[2])
    assert (snapshot / "onnx" / "int8" / "model.onnx").read_bytes() == model.read_bytes()
