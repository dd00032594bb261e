"""Attacks on detrq hub-server (and on the client by a hostile server): missing or read-only tokens,
path traversal in repository names and file paths, links planted in the root, wrong LFS content,
oversized bodies, stalled clients, tampered signed URLs, 50 concurrent commits to one branch; and a
server that sends paths outside the cache or redirects to another host (the token must not follow)."""
import base64
import hashlib
import http.client
import http.server
import json
import os
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from conftest import READ_TOKEN, WRITE_TOKEN, hub_env, run_detrq


def request(server, method, path, body=None, token=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
    h = dict(headers or {})
    if token:
        h["Authorization"] = f"Bearer {token}"
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    conn.request(method, path, body=body, headers=h)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, dict(resp.getheaders()), data


def create(server, repo="acme/r", private=False):
    org, name = repo.split("/")
    status, _, _ = request(server, "POST", "/api/repos/create", {"organization": org, "name": name, "private": private},
                           WRITE_TOKEN)
    assert status == 200


def commit_lines(*ops, parent=None, summary="c"):
    header = {"summary": summary, "description": ""}
    if parent:
        header["parentCommit"] = parent
    lines = [{"key": "header", "value": header}, *ops]
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


def add_file(path, content=b"x"):
    return {"key": "file", "value": {"path": path, "content": base64.b64encode(content).decode(), "encoding": "base64"}}


def commit(server, body, repo="acme/r", token=WRITE_TOKEN):
    return request(server, "POST", f"/api/models/{repo}/commit/main", body, token,
                   {"Content-Type": "application/x-ndjson"})


def head_sha(server, repo="acme/r"):
    status, _, data = request(server, "GET", f"/api/models/{repo}", token=READ_TOKEN)
    assert status == 200
    return json.loads(data)


def test_writes_need_a_write_token(hub_server):
    create(hub_server)
    body = {"organization": "acme", "name": "x"}
    assert request(hub_server, "POST", "/api/repos/create", body)[0] == 401
    assert request(hub_server, "POST", "/api/repos/create", body, READ_TOKEN)[0] == 403
    assert request(hub_server, "POST", "/api/repos/create", body, "hf_guess")[0] == 401
    pre = {"files": [{"path": "a", "size": 1, "sample": "eA=="}]}
    assert request(hub_server, "POST", "/api/models/acme/r/preupload/main", pre)[0] == 401
    assert request(hub_server, "POST", "/api/models/acme/r/preupload/main", pre, READ_TOKEN)[0] == 403
    batch = {"operation": "upload", "objects": [{"oid": "a" * 64, "size": 1}]}
    assert request(hub_server, "POST", "/acme/r.git/info/lfs/objects/batch", batch)[0] == 401
    assert request(hub_server, "POST", "/acme/r.git/info/lfs/objects/batch", batch, READ_TOKEN)[0] == 403
    assert commit(hub_server, commit_lines(add_file("a.txt")), token=None)[0] == 401
    assert commit(hub_server, commit_lines(add_file("a.txt")), token=READ_TOKEN)[0] == 403
    assert [s["rfilename"] for s in head_sha(hub_server)["siblings"]] == [".gitattributes"]
    assert "hf_guess" not in hub_server.log() and WRITE_TOKEN not in hub_server.log()


def test_path_traversal_in_repository_names_and_file_paths(hub_server, tmp_path):
    create(hub_server)
    for org, name in [("..", "etc"), ("acme", ".."), ("a/b", "c"), ("acme", "x/../../y"), ("", "solo")]:
        status, _, _ = request(hub_server, "POST", "/api/repos/create", {"organization": org, "name": name}, WRITE_TOKEN)
        assert status == 400, (org, name)
    for path in ["/api/models/..%2F..%2Fetc/passwd", "/api/models/../../etc", "/%2E%2E/x/resolve/main/y",
                 "/acme/r/resolve/main/..%2F..%2F..%2Frepo.json", "/acme/r/resolve/main/../repo.json",
                 "/acme/r/resolve/main/%2Fetc%2Fpasswd"]:
        status, _, _ = request(hub_server, "GET", path)
        assert status in (400, 404), path
    for bad in ["../escape.txt", "/abs.txt", "a/../../b.txt", "a//b", "./a", "c\\..\\d"]:
        status, _, _ = commit(hub_server, commit_lines(add_file(bad)))
        assert status == 400, bad
    status, _, _ = request(hub_server, "POST", "/api/models/acme/r/preupload/main",
                           {"files": [{"path": "../x", "size": 1, "sample": ""}]}, WRITE_TOKEN)
    assert status == 400
    escaped = [p for p in hub_server.root.parent.rglob("*") if "escape" in p.name or p.name == "b.txt"]
    assert escaped == []
    assert [s["rfilename"] for s in head_sha(hub_server)["siblings"]] == [".gitattributes"]


def test_a_link_planted_in_the_root_does_not_lead_outside(hub_server, tmp_path):
    create(hub_server)
    outside = tmp_path / "outside"
    (outside / "stolen").mkdir(parents=True)
    (outside / "stolen" / "repo.json").write_text('{"private": false}')
    os.symlink(outside, hub_server.root / "models" / "evil")
    status, _, data = request(hub_server, "GET", "/api/models/evil/stolen")
    assert status in (400, 404) and b"private" not in data
    status, _, _ = request(hub_server, "POST", "/api/repos/create", {"organization": "evil", "name": "new"}, WRITE_TOKEN)
    assert status == 400
    assert not (outside / "new").exists()


def lfs_batch(server, oid, size, repo="acme/r"):
    status, _, data = request(server, "POST", f"/{repo}.git/info/lfs/objects/batch",
                              {"operation": "upload", "transfers": ["basic"], "objects": [{"oid": oid, "size": size}]},
                              WRITE_TOKEN, {"Content-Type": "application/vnd.git-lfs+json"})
    assert status == 200
    return json.loads(data)["objects"][0]


def test_lfs_upload_with_a_wrong_sha256_or_size_is_not_stored(hub_server):
    create(hub_server)
    content = b"\0real weights" * 100
    oid = hashlib.sha256(content).hexdigest()
    obj = lfs_batch(hub_server, oid, len(content))
    href = urlsplit(obj["actions"]["upload"]["href"])
    target = href.path + "?" + href.query
    assert request(hub_server, "PUT", target, b"\0evil weights" * 100)[0] == 400  # same size, other bytes
    assert request(hub_server, "PUT", target, content + b"more")[0] == 413       # more than announced
    assert request(hub_server, "PUT", target, content[:-1])[0] == 400            # less than announced
    tampered = target.replace("sig=", "sig=0")
    assert request(hub_server, "PUT", tampered, content)[0] == 403
    lfs = {"key": "lfsFile", "value": {"path": "w.bin", "algo": "sha256", "oid": oid, "size": len(content)}}
    assert commit(hub_server, commit_lines(lfs))[0] == 422
    assert not list(hub_server.root.rglob(oid))
    assert request(hub_server, "PUT", target, content)[0] == 200
    assert commit(hub_server, commit_lines(lfs))[0] == 200
    assert lfs_batch(hub_server, oid, len(content)).get("actions") is None  # already there


def test_oversized_bodies_are_refused(make_hub_server):
    server = make_hub_server("--max-body-bytes", "4096", "--max-upload-bytes", "1000000")
    create(server)
    status, _, _ = commit(server, commit_lines(add_file("big.txt", os.urandom(8192))))
    assert status == 413
    status, _, _ = request(server, "POST", "/api/models/acme/r/preupload/main",
                           {"files": [{"path": f"f{i}", "size": 1, "sample": ""} for i in range(500)]}, WRITE_TOKEN)
    assert status == 413
    obj = lfs_batch(server, "b" * 64, 2_000_000)
    assert "error" in obj and obj["error"]["code"] == 422
    # A chunked body past the limit is cut off too.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", "/api/models/acme/r/commit/main")
    conn.putheader("Authorization", f"Bearer {WRITE_TOKEN}")
    conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders()
    try:
        for _ in range(10):
            conn.send(b"400\r\n" + b"x" * 1024 + b"\r\n")
        conn.send(b"0\r\n\r\n")
    except OSError:
        pass  # the server may have closed already
    assert conn.getresponse().status == 413
    assert [s["rfilename"] for s in head_sha(server)["siblings"]] == [".gitattributes"]


def test_a_stalled_client_does_not_hold_the_server(make_hub_server):
    server = make_hub_server("--header-timeout", "2", "--io-timeout", "2")
    create(server)
    stalled = []
    for _ in range(5):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.sendall(b"GET /api/models/acme/r HTTP/1.1\r\nHost: x")  # and never finishes
        stalled.append(s)
    t0 = time.monotonic()
    assert request(server, "GET", "/api/models/acme/r")[0] == 200
    assert time.monotonic() - t0 < 1.5  # served while the others stall
    for s in stalled:
        s.settimeout(10)
        data = s.recv(4096)  # the server gives up on them: 408 then close, or just close
        assert data == b"" or data.startswith(b"HTTP/1.1 408")
        s.close()


def test_fifty_concurrent_commits_are_serialized_and_none_is_lost(hub_server):
    create(hub_server)

    def one(i):
        return commit(hub_server, commit_lines(add_file(f"files/{i}.txt", f"file {i}".encode()), summary=f"c{i}"))[0]

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, range(50)))
    assert statuses == [200] * 50
    info = head_sha(hub_server)
    names = sorted(s["rfilename"] for s in info["siblings"])
    assert names == sorted([".gitattributes"] + [f"files/{i}.txt" for i in range(50)])
    for i in (0, 17, 49):
        status, _, data = request(hub_server, "GET", f"/acme/r/resolve/main/files/{i}.txt")
        assert status == 200 and data == f"file {i}".encode()


def test_fifty_concurrent_commits_on_one_parent_let_exactly_one_through(hub_server):
    create(hub_server)
    parent = head_sha(hub_server)["sha"]

    def one(i):
        return commit(hub_server, commit_lines(add_file(f"race/{i}.txt"), parent=parent))[0]

    with ThreadPoolExecutor(50) as pool:
        statuses = list(pool.map(one, range(50)))
    assert statuses.count(200) == 1 and statuses.count(409) == 49
    names = [s["rfilename"] for s in head_sha(hub_server)["siblings"]]
    assert len(names) == 2 and names[1] == f"race/{statuses.index(200)}.txt"


class HostileHub(http.server.BaseHTTPRequestHandler):
    """A fake Hub: lists a file outside the repository, and redirects downloads to another host."""
    commit = "c" * 40
    storage_port = 0
    seen = []

    def log_message(self, *args):
        pass

    def do_GET(self):
        HostileHub.seen.append((self.server.server_port, self.path, self.headers.get("Authorization")))
        if self.path.startswith("/api/models/evil/escape/revision/"):
            body = json.dumps({"id": "evil/escape", "sha": self.commit,
                               "siblings": [{"rfilename": "../../../../escaped.txt"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif self.path.startswith("/storage/"):
            self.send_response(200)
            self.send_header("Content-Length", "4")
            self.end_headers()
            self.wfile.write(b"data")
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()

    def do_HEAD(self):
        HostileHub.seen.append((self.server.server_port, self.path, self.headers.get("Authorization")))
        self.send_response(302)
        self.send_header("X-Repo-Commit", self.commit)
        self.send_header("X-Linked-Etag", '"' + hashlib.sha256(b"data").hexdigest() + '"')
        self.send_header("X-Linked-Size", "4")
        self.send_header("Location", f"http://127.0.0.1:{self.storage_port}/storage/blob")
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def hostile_hub():
    hub = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileHub)
    storage = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileHub)
    HostileHub.storage_port = storage.server_port
    HostileHub.seen = []
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (hub, storage)]
    for t in threads:
        t.start()
    yield hub, storage
    for s in (hub, storage):
        s.shutdown()
        s.server_close()


def test_the_client_refuses_paths_outside_the_cache(hostile_hub, tmp_path):
    hub, _ = hostile_hub
    home = tmp_path / "a" / "b" / "home"
    r = run_detrq(hub_env(f"http://127.0.0.1:{hub.server_port}", home), "pull", "--hf-repo", "evil/escape")
    assert r.returncode == 3, r.stderr
    assert "outside" in r.stderr
    assert not list(tmp_path.rglob("escaped.txt"))


def test_the_token_is_not_sent_to_the_storage_host(hostile_hub, tmp_path):
    hub, storage = hostile_hub
    token = "hf_secret_for_the_hub_only"
    r = run_detrq(hub_env(f"http://127.0.0.1:{hub.server_port}", tmp_path / "h", token), "pull", "--hf-repo",
                  "evil/redirect", "--files", "blob.bin")
    assert r.returncode == 0, r.stderr
    assert (Path(r.stdout.strip()) / "blob.bin").read_bytes() == b"data"
    to_hub = [auth for port, _, auth in HostileHub.seen if port == hub.server_port]
    to_storage = [auth for port, _, auth in HostileHub.seen if port == storage.server_port]
    assert to_hub == [f"Bearer {token}"] and to_storage == [None]
    assert token not in r.stderr + r.stdout


def test_expect_100_continue_and_keep_alive_on_one_connection(hub_server):
    create(hub_server)
    body = commit_lines(add_file("hello.txt", b"hi"))
    s = socket.create_connection(("127.0.0.1", hub_server.port), timeout=10)
    s.sendall(b"POST /api/models/acme/r/commit/main HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\n"
              + f"Authorization: Bearer {WRITE_TOKEN}\r\nContent-Length: {len(body)}\r\n\r\n".encode())
    assert s.recv(64).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
    s.sendall(body)
    first = s.recv(65536)
    assert first.startswith(b"HTTP/1.1 200 ")
    s.sendall(b"GET /acme/r/resolve/main/hello.txt HTTP/1.1\r\nHost: t\r\n\r\n")  # same connection
    second = b""
    while not second.endswith(b"hi"):
        chunk = s.recv(65536)
        assert chunk
        second += chunk
    assert second.startswith(b"HTTP/1.1 200 ") and b"X-Repo-Commit: " in second
    s.close()
