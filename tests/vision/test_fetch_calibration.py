"""detrq fetch-calibration against a fault-injecting HTTP server on 127.0.0.1 (a free port): bodies cut
halfway, 500s, 404s, slow responses, bodies that are not JPEG. Whatever happens, only complete, decodable
JPEGs may appear in the output folder."""
import collections
import http.server
import io
import json
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import run_detrq


def jpeg_bytes(seed):
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


# id -> behaviour; "once" behaviours fail on the first request(s) only, "always" ones on every request.
GOOD, NOT_FOUND, FLAKY_500, ALWAYS_500, CUT_ONCE, ALWAYS_CUT = "good", "404", "500x2", "500", "cut1", "cut"
HTML, TRUNCATED_JPEG, SLOW_ONCE, ALWAYS_SLOW = "html", "truncated", "slow1", "slow"
THROTTLED_ONCE = "429x1"
PLAN = [
    (1, GOOD), (2, NOT_FOUND), (3, FLAKY_500), (4, CUT_ONCE), (5, HTML), (6, TRUNCATED_JPEG),
    (7, SLOW_ONCE), (8, GOOD), (9, ALWAYS_500), (10, ALWAYS_CUT), (11, ALWAYS_SLOW), (12, GOOD),
    (13, THROTTLED_ONCE), (14, GOOD),
]
SUCCEEDS = [i for i, b in PLAN if b in (GOOD, FLAKY_500, CUT_ONCE, SLOW_ONCE, THROTTLED_ONCE)]
FAILS = [i for i, b in PLAN if i not in SUCCEEDS]
SLOW_S = 2.5  # against --timeout 1


class FaultyServer:
    def __init__(self, plan):
        self.plan = dict(plan)
        self.bodies = {i: jpeg_bytes(i) for i in self.plan}
        self.requests = collections.Counter()
        self.lock = threading.Lock()
        self.stop = threading.Event()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def send_body(self, body, content_type="image/jpeg", declared=None):
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(declared if declared is not None else len(body)))
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()

            def do_GET(self):
                name = self.path.rsplit("/", 1)[-1]
                try:
                    image_id = int(name.removesuffix(".jpg"))
                except ValueError:
                    image_id = -1
                if not self.path.startswith("/val2017/") or image_id not in server.plan:
                    self.send_error(404)
                    return
                with server.lock:
                    server.requests[image_id] += 1
                    n = server.requests[image_id]
                kind, body = server.plan[image_id], server.bodies[image_id]
                if kind == NOT_FOUND:
                    self.send_error(404)
                elif kind == ALWAYS_500 or (kind == FLAKY_500 and n <= 2):
                    self.send_error(500)
                elif kind == THROTTLED_ONCE and n == 1:
                    self.send_error(429)
                elif kind == ALWAYS_CUT or (kind == CUT_ONCE and n == 1):
                    # Full Content-Length, half the body, then the connection closes.
                    self.close_connection = True
                    self.send_body(body[: len(body) // 2], declared=len(body))
                    self.connection.shutdown(socket.SHUT_RDWR)
                elif kind == HTML:
                    self.send_body(b"<html><body>rate limited</body></html>", "text/html")
                elif kind == TRUNCATED_JPEG:
                    self.send_body(body[: len(body) * 2 // 3])  # a complete answer holding half a JPEG
                elif kind == ALWAYS_SLOW or (kind == SLOW_ONCE and n == 1):
                    server.stop.wait(SLOW_S)
                    if not server.stop.is_set():
                        self.send_body(body)
                else:
                    self.send_body(body)

        class QuietServer(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients hanging up on cut or slow answers are part of the test

        self.httpd = QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/val2017/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def total_requests(self):
        with self.lock:
            return sum(self.requests.values())

    def close(self):
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = FaultyServer(PLAN)
    yield s
    s.close()


def write_ids(path, ids):
    path.write_text("# test ids\n" + "\n".join(str(i) for i in ids) + "\n")
    return path


def fetch(server_url, ids_file, out, count, concurrency=3, retries=3):
    r = run_detrq("--json", "fetch-calibration", "--count", count, "--ids", ids_file, "--output-dir", out,
                  "--base-url", server_url, "--concurrency", concurrency, "--timeout", 1, "--retries", retries,
                  timeout=120)
    summary = json.loads(r.stdout) if r.stdout.strip() else None
    return r, summary


def assert_only_valid_jpegs(out, server):
    for p in out.iterdir():
        assert p.suffix == ".jpg" and ".tmp" not in p.name, f"stray file {p.name}"
        image_id = int(p.stem)
        assert p.read_bytes() == server.bodies[image_id], p.name
        with Image.open(p) as im:
            im.load()  # raises on a truncated file


def test_faults_are_skipped_or_retried_and_never_leave_bad_files(server, tmp_path):
    ids = write_ids(tmp_path / "ids.txt", [i for i, _ in PLAN])
    out = tmp_path / "images"
    r, s = fetch(server.url, ids, out, len(SUCCEEDS))
    assert r.returncode == 0, r.stderr
    assert s["downloaded"] == len(SUCCEEDS) and s["skipped"] == 0
    assert s["failed"] == len(FAILS), s["failures"]
    assert sorted(int(p.stem) for p in out.iterdir()) == SUCCEEDS
    assert_only_valid_jpegs(out, server)
    # Transient faults were retried, permanent ones were not.
    assert server.requests[3] == 3 and server.requests[4] == 2 and server.requests[7] == 2
    assert server.requests[13] == 2
    assert server.requests[9] == 3 and server.requests[10] == 3 and server.requests[11] == 3
    assert server.requests[2] == 1 and server.requests[5] == 1 and server.requests[6] == 1
    failures = "\n".join(s["failures"])
    for i in FAILS:
        assert f"{i:012d}.jpg" in failures

    # A second run finds everything present and makes no request at all.
    before = server.total_requests()
    r, s = fetch(server.url, ids, out, len(SUCCEEDS))
    assert r.returncode == 0, r.stderr
    assert (s["downloaded"], s["skipped"], s["failed"]) == (0, len(SUCCEEDS), 0)
    assert server.total_requests() == before


def test_no_more_requests_than_needed(server, tmp_path):
    ids = write_ids(tmp_path / "ids.txt", [1, 8, 12, 14])
    out = tmp_path / "images"
    r, s = fetch(server.url, ids, out, 2, concurrency=10)
    assert r.returncode == 0, r.stderr
    assert s["downloaded"] == 2
    assert server.total_requests() == 2
    assert sorted(int(p.stem) for p in out.iterdir()) == [1, 8]


def test_too_few_ids_fails_with_what_was_fetched(server, tmp_path):
    ids = write_ids(tmp_path / "ids.txt", [1, 2, 5, 6, 9])
    out = tmp_path / "images"
    r, s = fetch(server.url, ids, out, 3)
    assert r.returncode == 5, (r.returncode, r.stderr)  # 5xx among the failures: a network error
    assert s["downloaded"] == 1 and s["failed"] == 4
    assert "only 1 of 3" in r.stderr
    assert_only_valid_jpegs(out, server)

    ids = write_ids(tmp_path / "ids404.txt", [2, 5])
    r, s = fetch(server.url, ids, tmp_path / "other", 1)
    assert r.returncode == 1, (r.returncode, r.stderr)  # nothing transient: the id list ran out


def test_stale_temporary_files_are_removed(server, tmp_path):
    out = tmp_path / "images"
    out.mkdir()
    stale = out / "000000000001.jpg.tmp.4242.0.17"
    stale.write_bytes(server.bodies[1][:100])
    r, s = fetch(server.url, write_ids(tmp_path / "ids.txt", [1]), out, 1)
    assert r.returncode == 0, r.stderr
    assert not stale.exists()
    assert_only_valid_jpegs(out, server)


def test_unreachable_server_is_a_network_error(tmp_path):
    with socket.socket() as s:  # a port that was free a moment ago and that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "images"
    r, s = fetch(f"http://127.0.0.1:{port}/val2017", write_ids(tmp_path / "ids.txt", [1, 2]), out, 1,
                 retries=2)
    assert r.returncode == 5, r.stderr
    assert s["failed"] == 2 and s["downloaded"] == 0
    assert list(out.iterdir()) == []


def test_bad_id_list_is_invalid_input(tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("139\n28x5\n")
    r = run_detrq("fetch-calibration", "--ids", ids, "--output-dir", tmp_path / "o", "--base-url",
                  "http://127.0.0.1:9/")
    assert r.returncode == 3
    assert "ids.txt:2" in r.stderr and "28x5" in r.stderr
