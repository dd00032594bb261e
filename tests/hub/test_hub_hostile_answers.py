"""The Hub client against a hostile Hub whose API answers are malformed in the ways hub_answers_fuzzer
exercises: detrq publish and pull must fail with exit 5 (the server is at fault) and a message naming the
repository, never an internal error or a crash. The Hub is a small http.server on loopback."""
import hashlib
import http.server
import json
import threading

import pytest

from conftest import hub_env, run_detrq

REPO = "evil/answers"


class HostileAnswers(http.server.BaseHTTPRequestHandler):
    batch = b"{}"
    info = b"{}"

    def log_message(self, *args):
        pass

    def answer(self, body, status=200):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path == "/api/repos/create":
            self.answer(b"{}")
        elif self.path.startswith(f"/api/models/{REPO}/preupload/"):
            self.answer(json.dumps({"files": [{"path": "w.bin", "uploadMode": "lfs"}]}).encode())
        elif self.path == f"/{REPO}.git/info/lfs/objects/batch":
            self.answer(self.batch)
        else:
            self.answer(b'{"error": "unexpected"}', 404)

    def do_GET(self):
        if self.path.startswith(f"/api/models/{REPO}/revision/"):
            self.answer(self.info)
        else:
            self.answer(b'{"error": "unexpected"}', 404)


@pytest.fixture
def hostile():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), HostileAnswers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def assert_server_fault(r):
    assert r.returncode == 5, (r.returncode, r.stderr)
    assert REPO in r.stderr, r.stderr
    assert "internal" not in r.stderr, r.stderr


def batch_answer(oid_action):
    return json.dumps({"transfer": "basic", "objects": [oid_action]}).encode()


@pytest.mark.parametrize("case", ["chunk_size_not_digits", "chunk_size_an_object", "part_url_a_number",
                                  "error_a_string", "objects_not_a_list", "answer_a_list"])
def test_publish_refuses_a_malformed_lfs_batch_answer(hostile, tmp_path, case):
    data = b"\0" + bytes(range(256)) * 8
    f = tmp_path / "w.bin"
    f.write_bytes(data)
    oid = hashlib.sha256(data).hexdigest()
    upload = {"href": "http://127.0.0.1:1/upload", "header": {}}
    bodies = {
        "chunk_size_not_digits": batch_answer({"oid": oid, "size": len(data), "actions": {"upload": dict(upload, header={"chunk_size": "lots", "1": "http://127.0.0.1:1/p1"})}}),
        "chunk_size_an_object": batch_answer({"oid": oid, "size": len(data), "actions": {"upload": dict(upload, header={"chunk_size": {"n": 1}})}}),
        "part_url_a_number": batch_answer({"oid": oid, "size": len(data), "actions": {"upload": dict(upload, header={"chunk_size": "1024", "1": 7})}}),
        "error_a_string": batch_answer({"oid": oid, "size": len(data), "error": "no"}),
        "objects_not_a_list": json.dumps({"objects": {"oid": oid}}).encode(),
        "answer_a_list": b"[1, 2, 3]",
    }
    HostileAnswers.batch = bodies[case]
    r = run_detrq(hub_env(hostile, tmp_path / "home", "hf_token"), "publish", "--hf-repo", REPO, "--file", str(f))
    if case == "error_a_string":
        # A refusal, whatever type its "error" has, is the server refusing the file (exit 5), naming it.
        assert r.returncode == 5 and "refused the LFS object" in r.stderr and str(f) in r.stderr, (r.returncode, r.stderr)
    else:
        assert_server_fault(r)


@pytest.mark.parametrize("body", [b"[]", b'{"sha": 40}', b'{"sha": "' + b"a" * 40 + b'", "siblings": [1]}',
                                  b'{"sha": "' + b"a" * 40 + b'", "siblings": [{"rfilename": 5}]}'])
def test_pull_refuses_a_malformed_model_info_answer(hostile, tmp_path, body):
    HostileAnswers.info = body
    assert_server_fault(run_detrq(hub_env(hostile, tmp_path / "home"), "pull", "--hf-repo", REPO))
