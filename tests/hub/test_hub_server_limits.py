"""detrq hub-server's limits against hostile clients, judged by outcome: slow-header clients from many
addresses do not take the workers from others, one address cannot hold more than its share of sockets,
a 1 MB request head and a never-ending chunked body (fast or trickled) are cut off, and meanwhile another
client's request is served. Loopback only: 127.0.0.0/8 gives each "client" its own source address."""
import json
import select
import socket
import threading
import time

from conftest import WRITE_TOKEN
from test_hub_attacks import create, request


def connect(server, source):
    return socket.create_connection(("127.0.0.1", server.port), timeout=30, source_address=(source, 0))


def stall(server, source):
    """A client that starts a request head and never finishes it."""
    s = connect(server, source)
    s.sendall(b"GET /api/models/acme/r HTTP/1.1\r\nHost: x\r\nX-Slow: 1\r\n")
    return s


def answer_of(sock):
    """What the server sent before it closed: b"" when it only closed (or reset)."""
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    return data


def test_slow_heads_from_many_addresses_leave_the_workers_to_others(make_hub_server):
    server = make_hub_server()
    create(server)
    # Five times the default 64 workers in stalled heads, from ten addresses, each within its share of
    # sockets: only keeping heads out of the workers lets the next client through.
    stalled = [stall(server, f"127.0.0.{2 + i % 10}") for i in range(320)]
    for _ in range(3):
        status, _, body = request(server, "GET", "/api/models/acme/r")
        assert status == 200 and json.loads(body)["id"] == "acme/r"
    for s in stalled:
        s.close()


def test_one_address_is_held_to_its_share_while_another_is_served(make_hub_server):
    server = make_hub_server("--max-connections-per-address", "4")
    create(server)
    held = [stall(server, "127.0.0.2") for _ in range(4)]
    extra = connect(server, "127.0.0.2")  # one more than its share: refused at once
    assert answer_of(extra).startswith(b"HTTP/1.1 503")
    extra.close()
    assert request(server, "GET", "/api/models/acme/r")[0] == 200  # 127.0.0.1 is served meanwhile
    held[0].close()  # a freed place is usable again
    for _ in range(50):  # the server notices the close on its next loop turn
        again = connect(server, "127.0.0.2")
        again.sendall(b"GET /api/models/acme/r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = answer_of(again)
        again.close()
        if not data.startswith(b"HTTP/1.1 503"):
            break
    assert data.startswith(b"HTTP/1.1 200")
    for s in held[1:]:
        s.close()


def test_a_one_megabyte_header_is_cut_off_while_another_client_is_served(hub_server):
    create(hub_server)
    big = connect(hub_server, "127.0.0.2")
    head = b"GET /api/models/acme/r HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n"
    sender = threading.Thread(target=lambda: _send_quietly(big, head))
    sender.start()
    assert request(hub_server, "GET", "/api/models/acme/r")[0] == 200
    sender.join(timeout=60)
    assert answer_of(big).startswith(b"HTTP/1.1 431")
    big.close()


def _send_quietly(sock, data):
    try:
        sock.sendall(data)
    except OSError:
        pass  # the server may have stopped reading


def chunked_commit(server, source):
    s = connect(server, source)
    s.sendall(f"POST /api/models/acme/r/commit/main HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {WRITE_TOKEN}\r\n"
              "Content-Type: application/x-ndjson\r\nTransfer-Encoding: chunked\r\n\r\n".encode())
    return s


def send_chunks_until_answered(sock, chunk, max_chunks, pause_s):
    """Sends `chunk` (chunked framing) until the server answers or closes; returns the answer, or None when
    `max_chunks` went out and the server still listened."""
    framed = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    for _ in range(max_chunks):
        readable, _, _ = select.select([sock], [], [], pause_s)
        if readable:
            return answer_of(sock)
        try:
            sock.sendall(framed)
        except OSError:
            return answer_of(sock)
    return None


def test_a_never_ending_fast_chunked_body_is_cut_at_the_body_limit(make_hub_server):
    server = make_hub_server("--max-body-bytes", "1000000")
    create(server)
    s = chunked_commit(server, "127.0.0.2")
    assert request(server, "GET", "/api/models/acme/r")[0] == 200  # served while that body streams
    answer = send_chunks_until_answered(s, b"x" * 65536, max_chunks=200, pause_s=0)  # 13 MB, 13x the limit
    s.close()
    assert answer is not None and answer.startswith(b"HTTP/1.1 413")


def test_a_never_ending_trickled_chunked_body_is_cut_by_the_rate_limit(make_hub_server):
    # Each byte comes well within --io-timeout, so only the minimum body rate can end this.
    server = make_hub_server("--io-timeout", "1")
    create(server)
    s = chunked_commit(server, "127.0.0.2")
    assert request(server, "GET", "/api/models/acme/r")[0] == 200
    answer = send_chunks_until_answered(s, b"x", max_chunks=300, pause_s=0.2)  # up to 60 s
    s.close()
    assert answer is not None and answer.startswith(b"HTTP/1.1 408")
    assert request(server, "GET", "/api/models/acme/r")[0] == 200


def test_a_head_sent_a_byte_at_a_time_and_pipelined_requests_are_served(hub_server):
    create(hub_server)
    s = connect(hub_server, "127.0.0.2")
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    for b in b"\r\nGET /api/models/acme/r HTTP/1.1\r\nHost: x\r\n\r\n":  # a stray CRLF first, as RFC 9112 allows
        s.send(bytes([b]))
        time.sleep(0.01)  # not a timing assertion: only so that the server sees the end of the head split up
    first = http_answer(s)
    assert first.startswith(b"HTTP/1.1 200") and json.loads(first.split(b"\r\n\r\n", 1)[1])["id"] == "acme/r"
    # Two requests in one write, the second asking to close: both answered, in order, on this connection.
    s.sendall(b"GET /api/models/acme/nope HTTP/1.1\r\nHost: x\r\n\r\n"
              b"GET /api/models/acme/r HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    both = answer_of(s)
    s.close()
    assert both.startswith(b"HTTP/1.1 401") and both.count(b"HTTP/1.1 200") == 1  # 401: unknown repo, as the Hub


def http_answer(sock):
    """One answer with a Content-Length body, read off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body
