"""`detrq pull` of Xet-stored files from answers shaped like huggingface.co's documented API: the revision
API lists the file with its `lfs` sha256 and `xetHash`, `resolve` answers 302 to a CDN on another host with
the Xet metadata (X-Xet-Hash, a `Link: rel="xet-auth"` token route) beside X-Linked-Etag / X-Linked-Size,
and the CDN serves the bytes. Nothing outside can be reached here, so both are small local servers."""
import hashlib
import http.server
import json
import os
import threading

import pytest

from conftest import hub_env, run_detrq

COMMIT = "0123456789abcdef0123456789abcdef01234567"
XET_HASH = "ab" * 32  # opaque to a client that downloads over HTTP


class Recorder:
    def __init__(self):
        self.requests = []


def serve(handler_cls):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler_cls)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def hub_and_cdn():
    data = os.urandom(3_000_000)
    sha = hashlib.sha256(data).hexdigest()
    state = {"data": data, "cdn_auth": [], "cdn_bytes": data}

    class Cdn(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            state["cdn_auth"].append(self.headers.get("Authorization"))
            body = state["cdn_bytes"]
            start = 0
            if self.headers.get("Range", "").startswith("bytes="):
                start = int(self.headers["Range"][6:].split("-")[0])
            self.send_response(206 if start else 200)
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
            self.send_header("Content-Length", str(len(body) - start))
            self.end_headers()
            self.wfile.write(body[start:])

    cdn = serve(Cdn)

    class Hub(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def answer(self, body_wanted):
            if self.path.startswith("/api/models/acme/xet/revision/"):
                body = json.dumps({"id": "acme/xet", "sha": COMMIT, "private": False, "siblings": [
                    {"rfilename": "model.onnx", "size": len(data), "blobId": "f" * 40,
                     "lfs": {"sha256": sha, "size": len(data), "pointerSize": 134}, "xetHash": XET_HASH}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if body_wanted:
                    self.wfile.write(body)
            elif self.path.startswith("/acme/xet/resolve/") and self.path.endswith("/model.onnx"):
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{cdn.server_port}/xet-bridge-us/{XET_HASH}?X-Sig=1")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("ETag", f'"{sha}"')
                self.send_header("X-Linked-Etag", f'"{sha}"')
                self.send_header("X-Linked-Size", str(len(data)))
                self.send_header("X-Xet-Hash", XET_HASH)
                self.send_header("Link", f'<http://127.0.0.1:{self.server.server_port}/api/models/acme/xet/'
                                         f'xet-read-token/{COMMIT}>; rel="xet-auth"')
                self.send_header("Content-Length", "0")
                self.end_headers()
            else:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()

        def do_GET(self):
            self.answer(True)

        def do_HEAD(self):
            self.answer(False)

    hub = serve(Hub)
    yield f"http://127.0.0.1:{hub.server_port}", state
    hub.shutdown()
    cdn.shutdown()


def test_detrq_pull_reads_a_xet_file_through_the_cdn_redirect(hub_and_cdn, tmp_path):
    endpoint, state = hub_and_cdn
    env = hub_env(endpoint, tmp_path / "home", token="hf_secret_token")
    proc = run_detrq(env, "pull", "--hf-repo", "acme/xet", "--local-dir", str(tmp_path / "out"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "out" / "model.onnx").read_bytes() == state["data"]
    assert state["cdn_auth"] and all(a is None for a in state["cdn_auth"])  # the Hub token stays on the Hub


def test_detrq_pull_refuses_cdn_bytes_that_do_not_match_the_sha256(hub_and_cdn, tmp_path):
    endpoint, state = hub_and_cdn
    state["cdn_bytes"] = os.urandom(len(state["data"]))
    env = hub_env(endpoint, tmp_path / "home")
    proc = run_detrq(env, "pull", "--hf-repo", "acme/xet", "--local-dir", str(tmp_path / "out"))
    assert proc.returncode == 5, proc.stderr
    assert "sha256" in proc.stderr
    assert not (tmp_path / "out" / "model.onnx").exists()
