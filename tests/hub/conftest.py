"""Fixtures for the hub tests: a real `detrq hub-server` on loopback, and helpers that run detrq and
huggingface_hub (in a subprocess, since it reads its environment at import) against it."""
import os
import subprocess
import sys
import time

import pytest

DETRQ = os.environ.get("DETRQ_BIN", "")
PYTHON = os.environ.get("DETRQ_PYTHON", sys.executable)
WRITE_TOKEN = "hf_write_0123456789abcdef"
READ_TOKEN = "hf_read_0123456789abcdef"


class HubServerProcess:
    def __init__(self, tmp_path, *extra):
        self.root = tmp_path / "hub-root"
        self.tokens = tmp_path / "tokens.txt"
        self.tokens.write_text(f"# test tokens\n{WRITE_TOKEN} write\n{READ_TOKEN} read  # read-only\n")
        self.stderr_path = tmp_path / "hub-server.err"
        self.proc = subprocess.Popen(
            [DETRQ, "hub-server", "--root", str(self.root), "--port", "0", "--tokens", str(self.tokens), *extra],
            stdout=subprocess.PIPE, stderr=open(self.stderr_path, "w"), text=True)
        line = self.proc.stdout.readline()  # "serving ROOT on http://127.0.0.1:PORT"
        assert line.startswith("serving "), f"hub-server did not start: {line!r} {self.stderr_path.read_text()}"
        self.endpoint = line.split()[-1]
        self.port = int(self.endpoint.rsplit(":", 1)[1])

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def log(self):
        return self.stderr_path.read_text()


@pytest.fixture
def hub_server(tmp_path):
    server = HubServerProcess(tmp_path)
    yield server
    server.stop()


@pytest.fixture
def make_hub_server(tmp_path):
    servers = []

    def make(*extra):
        d = tmp_path / f"server{len(servers)}"
        d.mkdir()
        s = HubServerProcess(d, *extra)
        servers.append(s)
        return s
    yield make
    for s in servers:
        s.stop()


def hub_env(endpoint, hf_home, token=None, offline=False, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(hf_home), HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1", DETRQ_LOG="info")
    if token:
        env["HF_TOKEN"] = token
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    env.update(extra)
    return env


def run_detrq(env, *args, timeout=300):
    return subprocess.run([DETRQ, *args], env=env, capture_output=True, text=True, timeout=timeout)


def run_hf(env, code, timeout=300):
    """Runs a huggingface_hub snippet with `env`; returns the CompletedProcess."""
    return subprocess.run([PYTHON, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


def wait_for(predicate, seconds=10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False
