"""A loopback TCP proxy for fault tests: it cuts connections after a random number of response bytes,
or answers 503 to the first request matching each of some patterns (then closes the connection)."""
import random
import socket
import threading


class FaultProxy:
    def __init__(self, upstream_port, cut_mean_bytes=0, fail_once=(), seed=0):
        self.upstream_port = upstream_port
        self.cut_mean_bytes = cut_mean_bytes
        self.pending_failures = list(fail_once)
        self.failed = []
        self.cuts = 0
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        self.listener.close()

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
        except OSError:
            client.close()
            return
        with self.lock:
            budget = int(self.rng.uniform(0, 2 * self.cut_mean_bytes)) if self.cut_mean_bytes else None
        down = threading.Thread(target=self._pump_down, args=(upstream, client, budget), daemon=True)
        down.start()
        try:
            if self.pending_failures:
                self._pump_requests(client, upstream)
            else:
                self._pump(client, upstream)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        down.join(timeout=60)
        client.close()
        upstream.close()

    @staticmethod
    def _pump(src, dst):
        while True:
            data = src.recv(1 << 20)
            if not data:
                return
            dst.sendall(data)

    def _pump_down(self, upstream, client, budget):
        try:
            while True:
                data = upstream.recv(1 << 20)
                if not data:
                    break
                if budget is not None and len(data) >= budget:
                    client.sendall(data[:budget])
                    with self.lock:
                        self.cuts += 1
                    break
                if budget is not None:
                    budget -= len(data)
                client.sendall(data)
        except OSError:
            pass
        for s in (client, upstream):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _pump_requests(self, client, upstream):
        """Forwards requests one by one (no pipelining), failing the first match of each pattern."""
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                data = client.recv(1 << 16)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            head += b"\r\n\r\n"
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = buf[:length]
            buf = buf[length:]
            while len(body) < length:
                data = client.recv(min(1 << 20, length - len(body)))
                if not data:
                    return
                body += data
            with self.lock:
                match = next((p for p in self.pending_failures if p in request_line), None)
                if match:
                    self.pending_failures.remove(match)
                    self.failed.append(match)
            if match:
                client.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            upstream.sendall(head + body)
