"""detrq publish / pull against detrq hub-server: the cache layout, LFS and regular files, multipart,
private repositories, offline use, parent-commit conflicts, and that the token never shows up."""
import hashlib
import json
import os
from pathlib import Path

from conftest import READ_TOKEN, WRITE_TOKEN, hub_env, run_detrq


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def make_files(tmp_path, lfs_size=3_000_000):
    model = tmp_path / "model.onnx"
    model.write_bytes(b"\0ONNX" + os.urandom(lfs_size))  # the NUL byte makes it binary: LFS
    cfg = tmp_path / "calibration.json"
    cfg.write_text(json.dumps({"method": "entropy", "layers": 3}))
    return model, cfg


def test_publish_then_pull_shares_the_huggingface_cache_layout(hub_server, tmp_path):
    model, cfg = make_files(tmp_path)
    env = hub_env(hub_server.endpoint, tmp_path / "pub", WRITE_TOKEN)
    r = run_detrq(env, "--json", "publish", "--hf-repo", "acme/rfdetr-int8", "--file", f"{model}:onnx/model.onnx",
                  "--file", str(cfg), "--message", "first")
    assert r.returncode == 0, r.stderr
    commit = json.loads(r.stdout)["commit"]
    assert len(commit) == 40

    home = tmp_path / "user"
    r = run_detrq(hub_env(hub_server.endpoint, home), "pull", "--hf-repo", "acme/rfdetr-int8")
    assert r.returncode == 0, r.stderr
    snapshot = Path(r.stdout.strip())
    repo_dir = home / "hub" / "models--acme--rfdetr-int8"
    assert snapshot == repo_dir / "snapshots" / commit
    assert (repo_dir / "refs" / "main").read_text() == commit
    pulled = snapshot / "onnx" / "model.onnx"
    assert pulled.is_symlink() and sha256(pulled) == sha256(model)
    # LFS blobs are named by their sha256, regular ones by their git blob id.
    assert os.path.basename(os.readlink(pulled)) == sha256(model)
    assert (repo_dir / "blobs" / sha256(model)).is_file()
    assert (snapshot / "calibration.json").read_text() == cfg.read_text()
    assert not list(repo_dir.rglob("*.incomplete"))


def test_pull_selected_files_into_a_local_dir(hub_server, tmp_path):
    model, cfg = make_files(tmp_path, 1000)
    env = hub_env(hub_server.endpoint, tmp_path / "pub", WRITE_TOKEN)
    assert run_detrq(env, "publish", "--hf-repo", "acme/m", "--file", str(model), "--file", str(cfg)).returncode == 0
    out = tmp_path / "out"
    r = run_detrq(hub_env(hub_server.endpoint, tmp_path / "u"), "pull", "--hf-repo", "acme/m", "--files",
                  "calibration.json", "--local-dir", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(out / "calibration.json")]
    assert (out / "calibration.json").read_text() == cfg.read_text()
    assert not (out / "model.onnx").exists()


def test_multipart_upload_when_the_server_asks_for_it(make_hub_server, tmp_path):
    server = make_hub_server("--multipart-mb", "1")
    model, _ = make_files(tmp_path, 3_500_000)
    env = hub_env(server.endpoint, tmp_path / "pub", WRITE_TOKEN)
    r = run_detrq(env, "publish", "--hf-repo", "acme/parts", "--file", str(model))
    assert r.returncode == 0, r.stderr
    r = run_detrq(hub_env(server.endpoint, tmp_path / "u"), "pull", "--hf-repo", "acme/parts", "--files", "model.onnx")
    assert r.returncode == 0, r.stderr
    assert sha256(Path(r.stdout.strip()) / "model.onnx") == sha256(model)


def test_private_repository_needs_a_token_and_the_token_is_never_printed(hub_server, tmp_path):
    model, _ = make_files(tmp_path, 1000)
    env = hub_env(hub_server.endpoint, tmp_path / "pub", WRITE_TOKEN)
    r = run_detrq(env, "publish", "--private", "--hf-repo", "acme/secret", "--file", str(model))
    assert r.returncode == 0, r.stderr
    anonymous = run_detrq(hub_env(hub_server.endpoint, tmp_path / "anon"), "pull", "--hf-repo", "acme/secret")
    assert anonymous.returncode == 5
    assert "401" in anonymous.stderr and "HF_TOKEN" in anonymous.stderr
    wrong = run_detrq(hub_env(hub_server.endpoint, tmp_path / "w", "hf_not_a_real_token_xyz"), "pull",
                      "--hf-repo", "acme/secret")
    assert wrong.returncode == 5
    assert "hf_not_a_real_token_xyz" not in wrong.stderr + wrong.stdout
    reader = run_detrq(hub_env(hub_server.endpoint, tmp_path / "r", READ_TOKEN), "-v", "pull", "--hf-repo", "acme/secret")
    assert reader.returncode == 0, reader.stderr
    # A read token cannot write, and says so without echoing itself.
    denied = run_detrq(hub_env(hub_server.endpoint, tmp_path / "r", READ_TOKEN), "-v", "publish", "--hf-repo",
                       "acme/secret", "--file", str(model))
    assert denied.returncode == 5 and "403" in denied.stderr
    for proc in (reader, denied, anonymous):
        assert READ_TOKEN not in proc.stdout + proc.stderr and WRITE_TOKEN not in proc.stdout + proc.stderr
    assert READ_TOKEN not in hub_server.log() and WRITE_TOKEN not in hub_server.log()


def test_token_file_under_hf_home_is_used(hub_server, tmp_path):
    model, _ = make_files(tmp_path, 1000)
    home = tmp_path / "home"
    home.mkdir()
    (home / "token").write_text(WRITE_TOKEN + "\n")
    r = run_detrq(hub_env(hub_server.endpoint, home), "publish", "--hf-repo", "acme/tf", "--file", str(model))
    assert r.returncode == 0, r.stderr


def test_offline_pull_uses_the_cache_after_the_server_is_gone(hub_server, tmp_path):
    model, _ = make_files(tmp_path, 1000)
    assert run_detrq(hub_env(hub_server.endpoint, tmp_path / "p", WRITE_TOKEN), "publish", "--hf-repo", "acme/off",
                     "--file", str(model)).returncode == 0
    home = tmp_path / "u"
    online = run_detrq(hub_env(hub_server.endpoint, home), "pull", "--hf-repo", "acme/off")
    assert online.returncode == 0, online.stderr
    hub_server.stop()
    offline = run_detrq(hub_env(hub_server.endpoint, home, offline=True), "pull", "--hf-repo", "acme/off",
                        "--files", "model.onnx")
    assert offline.returncode == 0, offline.stderr
    assert offline.stdout == online.stdout
    missing = run_detrq(hub_env(hub_server.endpoint, tmp_path / "empty", offline=True), "pull", "--hf-repo", "acme/off")
    assert missing.returncode == 5 and "HF_HUB_OFFLINE" in missing.stderr


def test_parent_commit_that_is_not_the_head_is_refused_with_409(hub_server, tmp_path):
    model, cfg = make_files(tmp_path, 1000)
    env = hub_env(hub_server.endpoint, tmp_path / "p", WRITE_TOKEN)
    first = json.loads(run_detrq(env, "--json", "publish", "--hf-repo", "acme/c", "--file", str(model)).stdout)["commit"]
    second = run_detrq(env, "--json", "publish", "--hf-repo", "acme/c", "--file", str(cfg), "--parent-commit", first)
    assert second.returncode == 0, second.stderr
    stale = run_detrq(env, "publish", "--hf-repo", "acme/c", "--file", str(cfg), "--parent-commit", first)
    assert stale.returncode == 5 and "409" in stale.stderr


def test_missing_repository_revision_and_file_have_clear_errors(hub_server, tmp_path):
    model, _ = make_files(tmp_path, 1000)
    assert run_detrq(hub_env(hub_server.endpoint, tmp_path / "p", WRITE_TOKEN), "publish", "--hf-repo", "acme/e",
                     "--file", str(model)).returncode == 0
    env = hub_env(hub_server.endpoint, tmp_path / "u", READ_TOKEN)
    r = run_detrq(env, "pull", "--hf-repo", "acme/nope")
    assert r.returncode == 5 and "repository not found" in r.stderr
    r = run_detrq(env, "pull", "--hf-repo", "acme/e", "--revision", "v9")
    assert r.returncode == 5 and "revision not found" in r.stderr
    r = run_detrq(env, "pull", "--hf-repo", "acme/e", "--files", "nope.bin")
    assert r.returncode == 5 and "file not found" in r.stderr
    r = run_detrq(env, "pull", "--hf-repo", "../etc")
    assert r.returncode == 3
