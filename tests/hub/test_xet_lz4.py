"""detrq's LZ4 frame decoder (what the server runs on every uploaded xorb chunk) against the reference
`lz4` tool: frames it writes with each block and checksum option decode to the original bytes, and
truncated or corrupted frames are refused without a crash."""
import os
import random
import shutil
import subprocess

import pytest

PROBE = os.environ.get("XET_PROBE", "")
OPTIONS = [[], ["-BD"], ["--content-size"], ["-BX"], ["--no-frame-crc"], ["-B4"], ["-B4", "-BD"], ["-9"], ["-1"]]


def payloads():
    rng = random.Random(3)
    text = "".join(f"tensor {i} scale {i * 0.001:.6f}\n" for i in range(20_000)).encode()
    return {"text": text, "zeros": bytes(300_000), "random": rng.randbytes(200_000),
            "mixed": text[:50_000] + rng.randbytes(30_000) + bytes(70_000) + text[:90_000], "one": b"x", "empty": b""}


@pytest.fixture(scope="module")
def lz4():
    tool = shutil.which("lz4")
    if not tool:
        pytest.skip("the lz4 tool (Debian package lz4, scripts/setup.sh) is not installed")
    return tool


def compress(lz4, data, options, tmp_path):
    src, dst = tmp_path / "in.bin", tmp_path / "in.bin.lz4"
    src.write_bytes(data)
    subprocess.run([lz4, "-q", "-f", *options, str(src), str(dst)], check=True)
    return dst.read_bytes()


def decode(frame, tmp_path):
    assert PROBE, "XET_PROBE is not set (run through ctest)"
    src, dst = tmp_path / "frame.lz4", tmp_path / "out.bin"
    src.write_bytes(frame)
    if dst.exists():
        dst.unlink()
    rc = subprocess.run([PROBE, "lz4-decode", str(src), str(dst)]).returncode
    return rc, (dst.read_bytes() if rc == 0 else None)


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: " ".join(o) or "default")
@pytest.mark.parametrize("name", list(payloads()))
def test_frames_from_the_lz4_tool_decode_to_the_original(lz4, tmp_path, options, name):
    data = payloads()[name]
    assert decode(compress(lz4, data, options, tmp_path), tmp_path) == (0, data)


def test_concatenated_frames_decode_to_the_concatenation(lz4, tmp_path):
    a, b = payloads()["text"], payloads()["mixed"]
    frames = compress(lz4, a, [], tmp_path) + compress(lz4, b, ["-BD"], tmp_path)
    assert decode(frames, tmp_path) == (0, a + b)


def test_truncated_and_corrupted_frames_are_refused_or_differ_never_crash(lz4, tmp_path):
    data = payloads()["mixed"]
    frame = compress(lz4, data, ["-BD"], tmp_path)
    rng = random.Random(9)
    for cut in sorted(rng.sample(range(1, len(frame)), 40)):
        rc, _ = decode(frame[:cut], tmp_path)
        assert rc == 3, f"a frame cut at {cut} of {len(frame)} bytes was accepted"
    for _ in range(60):
        broken = bytearray(frame)
        for _ in range(rng.randint(1, 8)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        rc, _ = decode(bytes(broken), tmp_path)
        # Checksums are not verified (the xorb's content hash is), so some corruptions decode; none may crash.
        assert rc in (0, 3), f"decoder died with {rc}"  # a signal is negative
