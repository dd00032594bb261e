"""Load test for `detrq hub-server` under a slow-header attack, on loopback only.

1000 attackers (source addresses 127.0.0.2-127.0.0.9) open connections and trickle one header line a second,
reconnecting whenever the server drops them; meanwhile 50 well-behaved clients (source 127.0.0.1) each do
downloads (GET /{repo}/resolve/main/data.bin, 1 MiB) and commits (POST /api/models/{repo}/commit/main,
ndjson) over plain HTTP/1.1. Every good request has a 30 s limit; the run is bounded and stops by itself.
Prints one JSON line: good-client successes, median and p90 latency, what the failures were.

  python bench/hub_server_load.py --detrq NEW_BIN [--baseline OLD_BIN] [--rounds 3] [--attackers 1000] [--good 50]

With --baseline the two binaries are run alternately, round by round, and a summary line gives each one's
median over the rounds (the machine is shared: only interleaved runs compare).
"""
import argparse
import asyncio
import base64
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TOKEN = "hf_write_0123456789abcdef"
REPO = "acme/load"
PAYLOAD = os.urandom(1 << 20)


async def http(port, method, path, body=b"", headers=None, source="127.0.0.1", timeout=30.0):
    """One request on its own connection; returns (status, body)."""
    async def go():
        reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        try:
            h = {"Host": "127.0.0.1", "Authorization": f"Bearer {TOKEN}", "Content-Length": str(len(body)),
                 "Connection": "close", **(headers or {})}
            head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items()) + "\r\n"
            writer.write(head.encode() + body)
            await writer.drain()
            data = await reader.read()  # Connection: close, so EOF ends the answer
        finally:
            writer.close()
        if not data.startswith(b"HTTP/1."):
            raise ConnectionError("no HTTP answer")
        status = int(data.split(b" ", 2)[1])
        return status, data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    return await asyncio.wait_for(go(), timeout)


def commit_body(name, content):
    lines = [{"key": "header", "value": {"summary": f"add {name}", "description": ""}},
             {"key": "file", "value": {"path": name, "content": base64.b64encode(content).decode(),
                                       "encoding": "base64"}}]
    return b"".join(json.dumps(x).encode() + b"\n" for x in lines)


async def attacker(port, source, stop, stats):
    while not stop.is_set():
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0))
        except OSError:
            await asyncio.sleep(0.1)
            continue
        stats["connections"] += 1
        try:
            writer.write(b"GET /api/models/acme/load HTTP/1.1\r\n")
            n = 0
            while not stop.is_set():
                await writer.drain()
                # A line a second, never the blank line; stop as soon as the server answers or hangs up.
                try:
                    data = await asyncio.wait_for(reader.read(4096), 1.0)
                    stats["answered" if data else "closed"] += 1
                    break
                except asyncio.TimeoutError:
                    pass
                writer.write(f"X-Slow-{n}: {'a' * 20}\r\n".encode())
                n += 1
        except OSError:
            stats["closed"] += 1
        finally:
            writer.close()
        await asyncio.sleep(0.05)


async def attack(port, attackers, stop_flag, stats_out):
    """The attackers' own event loop (in their own process, so they do not slow the good clients' loop)."""
    stop = asyncio.Event()
    stats = {"connections": 0, "answered": 0, "closed": 0}
    tasks = [asyncio.create_task(attacker(port, f"127.0.0.{2 + i % 8}", stop, stats)) for i in range(attackers)]
    while not stop_flag.is_set():
        await asyncio.sleep(0.1)
    stop.set()
    if tasks:
        await asyncio.wait(tasks, timeout=5)
    for t in tasks:
        t.cancel()
    stats_out.update(stats)


def attack_process(port, attackers, stop_flag, stats_out):
    asyncio.run(attack(port, attackers, stop_flag, stats_out))


async def good_client(port, index, ops, results):
    for k in range(ops):
        t0 = time.monotonic()
        try:
            if k % 2 == 0:
                status, body = await http(port, "GET", f"/{REPO}/resolve/main/data.bin")
                ok = status == 200 and body == PAYLOAD
            else:
                status, _ = await http(port, "POST", f"/api/models/{REPO}/commit/main",
                                       commit_body(f"c/{index}-{k}.txt", f"{index} {k}".encode()),
                                       {"Content-Type": "application/x-ndjson"})
                ok = status == 200
            results.append((ok, time.monotonic() - t0, status))
        except (OSError, asyncio.TimeoutError, ConnectionError) as e:
            results.append((False, time.monotonic() - t0, type(e).__name__))


async def run(port, attackers, good, ops, ramp_s):
    manager = multiprocessing.Manager()
    stop_flag, stats = manager.Event(), manager.dict()
    proc = multiprocessing.Process(target=attack_process, args=(port, attackers, stop_flag, stats))
    proc.start()
    await asyncio.sleep(ramp_s)  # let the attackers take their places
    results = []
    t0 = time.monotonic()
    await asyncio.gather(*(good_client(port, i, ops, results) for i in range(good)))
    good_wall = time.monotonic() - t0
    stop_flag.set()
    proc.join(timeout=15)
    if proc.is_alive():
        proc.kill()
    stats = dict(stats)
    manager.shutdown()
    lat = sorted(r[1] for r in results if r[0])
    failures = {}
    for ok, _, status in results:
        if not ok:
            failures[str(status)] = failures.get(str(status), 0) + 1
    return {"attackers": attackers, "good_clients": good, "good_requests": len(results),
            "good_successes": len(lat), "median_latency_s": round(statistics.median(lat), 4) if lat else None,
            "p90_latency_s": round(lat[int(0.9 * (len(lat) - 1))], 4) if lat else None,
            "good_phase_wall_s": round(good_wall, 2), "failures": failures, "attacker_stats": stats}


def start_server(detrq, root, extra):
    tokens = root / "tokens.txt"
    tokens.write_text(f"{TOKEN} write\n")
    proc = subprocess.Popen([detrq, "hub-server", "--root", str(root / "hub"), "--port", "0", "--tokens",
                             str(tokens), *extra], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    if not line.startswith("serving "):
        proc.kill()
        sys.exit(f"hub-server did not start: {line!r}")
    return proc, int(line.split()[-1].rsplit(":", 1)[1])


async def prepare(port):
    org, name = REPO.split("/")
    status, _ = await http(port, "POST", "/api/repos/create", json.dumps({"organization": org, "name": name}).encode(),
                           {"Content-Type": "application/json"})
    assert status == 200, status
    status, _ = await http(port, "POST", f"/api/models/{REPO}/commit/main", commit_body("data.bin", PAYLOAD),
                           {"Content-Type": "application/x-ndjson"})
    assert status == 200, status


def measure(detrq, a):
    with tempfile.TemporaryDirectory() as tmp:
        proc, port = start_server(detrq, Path(tmp), a.server_args)
        try:
            asyncio.run(prepare(port))
            return asyncio.run(run(port, a.attackers, a.good, a.ops, a.ramp))
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--detrq", required=True)
    ap.add_argument("--baseline", help="a second detrq binary, run alternately with --detrq")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--attackers", type=int, default=1000)
    ap.add_argument("--good", type=int, default=50)
    ap.add_argument("--ops", type=int, default=6, help="requests per good client, alternating download and commit")
    ap.add_argument("--ramp", type=float, default=3.0, help="seconds the attackers get before the good clients start")
    ap.add_argument("server_args", nargs="*", help="extra hub-server options (after --)")
    a = ap.parse_args()
    bins = {"detrq": a.detrq, **({"baseline": a.baseline} if a.baseline else {})}
    rounds = {name: [] for name in bins}
    for r in range(a.rounds):
        for name, path in (bins.items() if r % 2 == 0 else reversed(list(bins.items()))):
            out = measure(path, a)
            out.update(label=name, round=r)
            rounds[name].append(out)
            print(json.dumps(out), flush=True)
    summary = {name: {"successes": [o["good_successes"] for o in outs], "of": outs[0]["good_requests"],
                      "median_of_median_latency_s": statistics.median(
                          [o["median_latency_s"] for o in outs if o["median_latency_s"] is not None] or [float("nan")])}
               for name, outs in rounds.items()}
    print(json.dumps({"summary": summary, "attackers": a.attackers, "good_clients": a.good}))


if __name__ == "__main__":
    main()
