"""detrq's xorb and shard parsers (the server's first look at hostile uploads): xorbs built here from the
format description, with plain chunks and chunks the reference lz4 tool compressed, hash to what an
independent Python computation of the Xet merkle root (over the `blake3` package) gives; shards list
their files; truncated and mutated objects are refused or parsed without a crash."""
import os
import random
import shutil
import struct
import subprocess

import pytest

PROBE = os.environ.get("XET_PROBE", "")
DATA_KEY = bytes([102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16,
                  155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41])
NODE_KEY = bytes([1, 126, 197, 199, 165, 71, 41, 150, 253, 148, 102, 102, 180, 138, 2, 230, 93, 221, 83, 111, 55,
                  199, 109, 210, 248, 99, 82, 230, 74, 83, 113, 63])
SHARD_TAG = bytes([72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123,
                   129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169])


@pytest.fixture(scope="module")
def blake3():
    return pytest.importorskip("blake3", reason="the blake3 package (requirements-test.txt) is not installed")


def probe(*args):
    assert PROBE, "XET_PROBE is not set (run through ctest)"
    return subprocess.run([PROBE, *map(str, args)], capture_output=True, text=True)


def xet_hex(digest):
    return "".join(digest[i:i + 8][::-1].hex() for i in range(0, 32, 8))


def merkle_root(blake3, entries):
    """Xet's aggregated hash, written here from its description: groups end at a hash whose last u64 is
    0 mod 4 (from the third entry on), at most 9 entries; a node hashes '<hex> : <size>\\n' lines."""
    while len(entries) > 1:
        nxt, i = [], 0
        while i < len(entries):
            rest = entries[i:]
            n = len(rest) if len(rest) <= 2 else min(9, len(rest))
            for k in range(2, min(9, len(rest))):
                if int.from_bytes(rest[k][0][24:32], "little") % 4 == 0:
                    n = k + 1
                    break
            text = "".join(f"{xet_hex(h)} : {s}\n" for h, s in rest[:n])
            nxt.append((blake3.blake3(text.encode(), key=NODE_KEY).digest(), sum(s for _, s in rest[:n])))
            i += n
        entries = nxt
    return entries[0][0]


def chunk(data, scheme=0, payload=None):
    payload = data if payload is None else payload
    return b"\0" + struct.pack("<I", len(payload))[:3] + bytes([scheme]) + struct.pack("<I", len(data))[:3] + payload


def lz4_frame(data, tmp_path):
    tool = shutil.which("lz4")
    if not tool:
        pytest.skip("the lz4 tool (Debian package lz4, scripts/setup.sh) is not installed")
    src = tmp_path / "c.bin"
    src.write_bytes(data)
    subprocess.run([tool, "-q", "-f", str(src), str(tmp_path / "c.lz4")], check=True)
    return (tmp_path / "c.lz4").read_bytes()


def build_xorb(blake3, tmp_path, n_chunks, seed, footer=True):
    rng = random.Random(seed)
    body, entries = b"", []
    for i in range(n_chunks):
        data = rng.randbytes(rng.randint(1, 20_000)) if i % 2 else ("row %d\n" % i).encode() * rng.randint(50, 900)
        body += chunk(data, 1, lz4_frame(data, tmp_path)) if i % 3 == 0 else chunk(data)
        entries.append((blake3.blake3(data, key=DATA_KEY).digest(), len(data)))
    if footer:  # a footer xet-core's reader would take; the parser must stop before it
        info = b"XETBLOB\x01" + bytes(84)
        body += info + struct.pack("<I", len(info))
    return body, xet_hex(merkle_root(blake3, entries))


@pytest.mark.parametrize("n_chunks,footer", [(1, False), (2, True), (3, False), (17, True), (60, True)])
def test_xorb_hash_matches_an_independent_computation(blake3, tmp_path, n_chunks, footer):
    xorb, expected = build_xorb(blake3, tmp_path, n_chunks, n_chunks, footer)
    (tmp_path / "x.xorb").write_bytes(xorb)
    out = probe("xorb-hash", tmp_path / "x.xorb")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [expected, str(n_chunks)]


def test_mutated_xorbs_are_refused_or_hash_differently_never_crash(blake3, tmp_path):
    xorb, expected = build_xorb(blake3, tmp_path, 12, 5)
    rng = random.Random(6)
    p = tmp_path / "m.xorb"
    for cut in sorted(rng.sample(range(1, len(xorb) - 100), 30)):
        p.write_bytes(xorb[:cut])
        out = probe("xorb-hash", p)
        assert out.returncode in (0, 3), out.stderr
        assert out.returncode == 3 or out.stdout.split()[0] != expected
    for _ in range(60):
        broken = bytearray(xorb)
        for _ in range(rng.randint(1, 6)):
            broken[rng.randrange(len(broken) - 100)] = rng.randrange(256)
        p.write_bytes(bytes(broken))
        out = probe("xorb-hash", p)
        assert out.returncode in (0, 3), out.stderr  # never a crash (a signal)


def shard(files):
    def h(x):
        raw = bytes.fromhex(x)
        return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8))
    out = SHARD_TAG + struct.pack("<QQ", 2, 200)
    for file_hash, terms, sha in files:
        flags = (1 << 30) if sha else 0
        out += h(file_hash) + struct.pack("<IIQ", flags, len(terms), 0)
        for xorb, nbytes, start, end in terms:
            out += h(xorb) + struct.pack("<IIII", 0, nbytes, start, end)
        if sha:
            out += h(sha) + bytes(16)
    return out + b"\xff" * 32 + bytes(16) + b"\xff" * 32 + bytes(16)


def test_shards_list_their_files_and_mutations_never_crash(tmp_path):
    files = [("11" * 32, [("22" * 32, 100, 0, 3), ("33" * 32, 50, 2, 4)], "ab" * 32), ("44" * 32, [("55" * 32, 9, 0, 1)], None)]
    data = shard(files)
    p = tmp_path / "s.shard"
    p.write_bytes(data)
    out = probe("shard-files", p)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == ["11" * 32 + " 2 " + "ab" * 32, "44" * 32 + " 1 -"]
    rng = random.Random(7)
    for cut in range(0, len(data) - 48, 7):
        p.write_bytes(data[:cut])
        assert probe("shard-files", p).returncode == 3, cut  # every cut loses the end marker
    for _ in range(80):
        broken = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        p.write_bytes(bytes(broken))
        assert probe("shard-files", p).returncode in (0, 3)
