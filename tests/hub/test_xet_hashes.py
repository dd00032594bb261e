"""detrq's BLAKE3 and Xet hashes against the real peers: the `blake3` package (plain and keyed, at lengths
that cross block, chunk and tree boundaries) and hf_xet's own file hashes (merkle tree and content-defined
chunking)."""
import os
import random
import subprocess

import pytest


@pytest.fixture(scope="module")
def blake3():
    return pytest.importorskip("blake3", reason="the blake3 package (requirements-test.txt) is not installed")


@pytest.fixture(scope="module")
def hf_xet():
    return pytest.importorskip("hf_xet", reason="hf_xet (requirements-test.txt) is not installed")


PROBE = os.environ.get("XET_PROBE", "")
# Xet's chunk-hash key (xet-core, merklehash/data_hash.rs: DATA_KEY).
DATA_KEY = bytes([102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16,
                  155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41])
LENGTHS = [0, 1, 63, 64, 65, 1023, 1024, 1025, 2047, 2048, 2049, 3072, 3073, 4096, 4097, 8193, 31744, 102400,
           (1 << 20) + 7]


def probe(*args):
    assert PROBE, "XET_PROBE is not set (run through ctest)"
    return subprocess.run([PROBE, *map(str, args)], capture_output=True, text=True, check=True).stdout.strip()


def xet_hex(digest):
    """Xet spells a hash as four little-endian u64 words: each 8-byte group reversed."""
    return "".join(digest[i:i + 8][::-1].hex() for i in range(0, 32, 8))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    rng = random.Random(21)
    d = tmp_path_factory.mktemp("blake3")
    out = {}
    for n in LENGTHS:
        p = d / f"in{n}.bin"
        data = rng.randbytes(n)
        p.write_bytes(data)
        out[n] = (p, data)
    return out


@pytest.mark.parametrize("n", LENGTHS)
def test_blake3_matches_the_blake3_package(blake3, inputs, n):
    path, data = inputs[n]
    assert probe("blake3", path) == blake3.blake3(data).hexdigest()


@pytest.mark.parametrize("n", LENGTHS)
def test_keyed_blake3_matches_the_blake3_package(blake3, inputs, n):
    path, data = inputs[n]
    key = bytes(range(32))
    assert probe("blake3-keyed", key.hex(), path) == blake3.blake3(data, key=key).hexdigest()


@pytest.mark.parametrize("n", [0, 1, 8192, 131072])
def test_chunk_hash_is_keyed_blake3_in_xet_spelling(blake3, tmp_path, n):
    data = random.Random(n).randbytes(n)
    p = tmp_path / "chunk.bin"
    p.write_bytes(data)
    assert probe("chunk-hash", p) == xet_hex(blake3.blake3(data, key=DATA_KEY).digest())


def test_file_hash_of_a_one_chunk_file_matches_hf_xet(hf_xet, tmp_path):
    p = tmp_path / "small.bin"
    p.write_bytes(random.Random(5).randbytes(5000))  # below the 8 KiB minimum chunk: one chunk
    assert probe("file-hash-fixed", 1 << 20, p) == hf_xet.hash_files([str(p)])[0].hash


@pytest.mark.parametrize("size", [1_000_000, 3 << 20, 40 * 131072 + 1])
def test_file_hash_over_many_chunks_matches_hf_xet(hf_xet, tmp_path, size):
    # Constant bytes never trigger a content-defined boundary, so hf_xet cuts them at its 128 KiB maximum:
    # the chunk boundaries are known without a chunker, and the merkle tree has several levels.
    p = tmp_path / "zeros.bin"
    p.write_bytes(bytes(size))
    assert probe("file-hash-fixed", 131072, p) == hf_xet.hash_files([str(p)])[0].hash


@pytest.mark.parametrize("size,seed", [(8191, 1), (8192 + 100, 2), (300_000, 3), (2_000_000, 4), (9_000_001, 5)])
def test_content_defined_chunking_gives_hf_xets_file_hash(hf_xet, tmp_path, size, seed):
    # Random bytes: the cuts fall where the gear hash says, so this checks the chunker, not just the tree.
    p = tmp_path / "random.bin"
    p.write_bytes(random.Random(seed).randbytes(size))
    assert probe("file-hash", p) == hf_xet.hash_files([str(p)])[0].hash


def test_content_defined_chunking_of_text_gives_hf_xets_file_hash(hf_xet, tmp_path):
    p = tmp_path / "text.txt"
    p.write_text("".join(f"line {i}: the quick brown fox {i * i % 977}\n" for i in range(60_000)))
    assert probe("file-hash", p) == hf_xet.hash_files([str(p)])[0].hash
