"""Faults between detrq and its server: a large LFS pull through a proxy that cuts the connection at
random points, many times, ends with the right sha256 and nothing half-written in the snapshot; a
publish whose requests first get 503s retries and lands exactly once.

DETRQ_HUB_FAULT_MB sets the size of the large file (default 200, as the issue asks)."""
import hashlib
import json
import os
from pathlib import Path

from conftest import WRITE_TOKEN, hub_env, run_detrq
from fault_proxy import FaultProxy

FAULT_MB = int(os.environ.get("DETRQ_HUB_FAULT_MB", "200"))


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def test_large_lfs_pull_survives_connections_cut_at_random_points(hub_server, tmp_path):
    size = FAULT_MB << 20
    model = tmp_path / "large.onnx"
    with open(model, "wb") as f:
        block = os.urandom(1 << 20)
        f.write(b"\0")
        for i in range(FAULT_MB):
            f.write(hashlib.sha256(str(i).encode()).digest() + block[32:])  # distinct blocks
    expected = sha256_file(model)
    r = run_detrq(hub_env(hub_server.endpoint, tmp_path / "pub", WRITE_TOKEN), "publish", "--hf-repo", "acme/large",
                  "--file", str(model))
    assert r.returncode == 0, r.stderr

    # About 25 cuts over the file; the seed makes a failure reproducible.
    proxy = FaultProxy(hub_server.port, cut_mean_bytes=max(size // 25, 1 << 16), seed=1234)
    try:
        home = tmp_path / "user"
        r = run_detrq(hub_env(proxy.endpoint, home), "pull", "--hf-repo", "acme/large", "--files", "large.onnx",
                      timeout=600)
        assert r.returncode == 0, r.stderr
    finally:
        proxy.close()
    assert proxy.cuts >= 10, f"only {proxy.cuts} cuts: the test did not exercise resuming"
    pulled = Path(r.stdout.strip()) / "large.onnx"
    assert sha256_file(pulled) == expected
    repo = home / "hub" / "models--acme--large"
    assert os.path.basename(os.readlink(pulled)) == expected
    assert not list(repo.rglob("*.incomplete"))


def test_an_interrupted_download_resumes_from_the_incomplete_file(hub_server, tmp_path):
    data = b"\0" + os.urandom(3_000_000)
    model = tmp_path / "m.bin"
    model.write_bytes(data)
    assert run_detrq(hub_env(hub_server.endpoint, tmp_path / "p", WRITE_TOKEN), "publish", "--hf-repo", "acme/res",
                     "--file", str(model)).returncode == 0
    oid = hashlib.sha256(data).hexdigest()
    home = tmp_path / "u"
    blobs = home / "hub" / "models--acme--res" / "blobs"
    blobs.mkdir(parents=True)
    (blobs / (oid + ".incomplete")).write_bytes(data[:1_234_567])  # left by an earlier, killed run
    r = run_detrq(hub_env(hub_server.endpoint, home), "pull", "--hf-repo", "acme/res", "--files", "m.bin")
    assert r.returncode == 0, r.stderr
    assert "resuming at 1234567 bytes" in r.stderr
    assert (Path(r.stdout.strip()) / "m.bin").read_bytes() == data
    # A corrupt partial file is caught by the sha256 check and downloaded again.
    home2 = tmp_path / "u2"
    blobs2 = home2 / "hub" / "models--acme--res" / "blobs"
    blobs2.mkdir(parents=True)
    (blobs2 / (oid + ".incomplete")).write_bytes(b"\1" * 1_000_000)
    r = run_detrq(hub_env(hub_server.endpoint, home2), "pull", "--hf-repo", "acme/res", "--files", "m.bin")
    assert r.returncode == 0, r.stderr
    assert "sha256 mismatch" in r.stderr
    assert (Path(r.stdout.strip()) / "m.bin").read_bytes() == data


def test_publish_retries_after_5xx_and_commits_exactly_once(hub_server, tmp_path):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\0" + os.urandom(2_000_000))
    notes = tmp_path / "notes.txt"
    notes.write_text("int8 entropy\n")
    patterns = ["POST /api/repos/create", "/preupload/main", "/info/lfs/objects/batch", "PUT /api/lfs-upload/",
                "POST /api/lfs-verify/", "POST /api/models/acme/flaky/commit/main"]
    proxy = FaultProxy(hub_server.port, fail_once=patterns)
    try:
        r = run_detrq(hub_env(proxy.endpoint, tmp_path / "p", WRITE_TOKEN), "--json", "publish", "--hf-repo",
                      "acme/flaky", "--file", str(model), "--file", str(notes))
    finally:
        proxy.close()
    assert r.returncode == 0, r.stderr
    assert sorted(proxy.failed) == sorted(patterns)
    commit = json.loads(r.stdout)["commit"]
    r = run_detrq(hub_env(hub_server.endpoint, tmp_path / "u"), "pull", "--hf-repo", "acme/flaky")
    assert r.returncode == 0, r.stderr
    snapshot = Path(r.stdout.strip())
    assert snapshot.name == commit  # the retried commit is the head: it landed once
    assert (snapshot / "model.onnx").read_bytes() == model.read_bytes()
    assert (snapshot / "notes.txt").read_text() == notes.read_text()
    commits = list((hub_server.root / "models" / "acme" / "flaky" / "commits").iterdir())
    assert len(commits) == 2  # the initial commit and this one
    assert not list((hub_server.root / "models" / "acme" / "flaky" / "tmp").iterdir())
