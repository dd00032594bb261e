"""The real huggingface_hub with hf_xet against detrq hub-server over the Xet protocol: uploads and
downloads with the pinned client (.venv) and the newest one (a second venv, .venv-newest, made by
scripts/setup.sh from requirements-test-newest.txt), plain-HTTP and detrq downloads of Xet files, LFS and
Xet files in one repository, hostile uploads, a cut upload, and ten concurrent uploaders."""
import hashlib
import http.client
import json
import os
import random
import struct
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import PYTHON, READ_TOKEN, WRITE_TOKEN, hub_env, run_detrq, run_hf

SOURCE = Path(os.environ.get("DETRQ_SOURCE_DIR", Path(__file__).resolve().parents[2]))
NEWEST = os.environ.get("DETRQ_PYTHON_NEWEST", str(SOURCE / ".venv-newest" / "bin" / "python"))
SHARD_TAG = bytes([72, 70, 82, 101, 112, 111, 77, 101, 116, 97, 68, 97, 116, 97, 0, 85, 105, 103, 69, 106, 123,
                   129, 87, 131, 165, 189, 217, 92, 205, 209, 74, 169])
DATA_KEY = bytes([102, 151, 245, 119, 91, 149, 80, 222, 49, 53, 203, 172, 165, 151, 24, 28, 157, 228, 33, 16,
                  155, 235, 43, 88, 180, 208, 176, 75, 147, 173, 242, 41])


def check(proc):
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def clients():
    out = [pytest.param(PYTHON, id="pinned")]
    reason = f"no second venv with the newest huggingface_hub at {NEWEST} (scripts/setup.sh makes it)"
    out.append(pytest.param(NEWEST, id="newest", marks=pytest.mark.skipif(not os.path.exists(NEWEST), reason=reason)))
    return out


def run_client(python, env, code, timeout=600):
    return subprocess.run([python, "-c", code], env=env, capture_output=True, text=True, timeout=timeout)


def env_for(server, home, token=WRITE_TOKEN, **extra):
    return hub_env(server.endpoint, home, token, **extra)


def repo_dir(server, repo):
    return server.root / "models" / repo


def tree(server, repo):
    req = urllib.request.Request(f"{server.endpoint}/api/models/{repo}/tree/main?recursive=true",
                                 headers={"Authorization": f"Bearer {WRITE_TOKEN}"})
    return {e["path"]: e for e in json.load(urllib.request.urlopen(req)) if e["type"] == "file"}


def create_repo(server, tmp_path, repo):
    code = f"from huggingface_hub import HfApi; HfApi().create_repo({repo!r})"
    check(run_hf(env_for(server, tmp_path / "create"), code))


def random_file(path, size, seed):
    path.write_bytes(random.Random(seed).randbytes(size))
    return path


@pytest.mark.parametrize("python", clients())
def test_huggingface_hub_uploads_and_downloads_through_xet(hub_server, tmp_path, python):
    create_repo(hub_server, tmp_path, "acme/xet")
    one = random_file(tmp_path / "one.bin", 12_000_000, 1)
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    random_file(folder / "big.bin", 64 << 20, 2)
    random_file(folder / "sub" / "a.bin", 3_000_000, 3)
    (folder / "sub" / "b.bin").write_bytes((folder / "sub" / "a.bin").read_bytes()[:2_000_000] + b"tail" * 1000)
    code = f"""
from huggingface_hub import HfApi
api = HfApi()
api.upload_file(path_or_fileobj={str(one)!r}, path_in_repo="one.bin", repo_id="acme/xet")
api.upload_folder(folder_path={str(folder)!r}, path_in_repo="models", repo_id="acme/xet")
"""
    check(run_client(python, env_for(hub_server, tmp_path / "up"), code))
    files = tree(hub_server, "acme/xet")
    uploaded = {"one.bin": one, "models/big.bin": folder / "big.bin", "models/sub/a.bin": folder / "sub/a.bin",
                "models/sub/b.bin": folder / "sub/b.bin"}
    for path in uploaded:
        assert len(files[path].get("xetHash", "")) == 64, files[path]  # stored as Xet, not LFS

    code = """
import json
from huggingface_hub import hf_hub_download, snapshot_download
print(json.dumps({"one": hf_hub_download("acme/xet", "one.bin"), "snap": snapshot_download("acme/xet")}))
"""
    out = json.loads(check(run_client(python, env_for(hub_server, tmp_path / "down", token=READ_TOKEN), code)))
    assert Path(out["one"]).read_bytes() == one.read_bytes()
    for path, local in uploaded.items():
        assert (Path(out["snap"]) / path).read_bytes() == local.read_bytes(), path
    # hf_xet reconstructed the files itself: the server never had to reassemble them.
    objects = repo_dir(hub_server, "acme/xet") / "objects"
    for local in uploaded.values():
        assert not (objects / hashlib.sha256(local.read_bytes()).hexdigest()).exists()


def chunk_schemes(xorb):
    """Compression schemes of a stored xorb's chunks (header byte 4), walking the chunk headers."""
    schemes, pos = set(), 0
    while pos + 8 <= len(xorb) and xorb[pos] == 0:
        schemes.add(xorb[pos + 4])
        pos += 8 + int.from_bytes(xorb[pos + 1:pos + 4], "little")
    return schemes


def test_compressed_chunks_are_verified_and_served(hub_server, tmp_path):
    # hf_xet compresses these with byte-grouped LZ4 (scheme 2; plain LZ4 frames are checked against the lz4
    # tool in test_xet_lz4.py): the server must decode every chunk to verify it.
    create_repo(hub_server, tmp_path, "acme/packed")
    text = tmp_path / "vocab.txt"
    text.write_text("".join(f"token_{i}\t{i * 7 % 1000}\n" for i in range(400_000)))
    floats = tmp_path / "weights.bin"
    rng = random.Random(8)
    floats.write_bytes(b"".join(struct.pack("<f", rng.gauss(0, 0.02)) for _ in range(1_500_000)))
    code = f"""
from huggingface_hub import HfApi
api = HfApi()
api.upload_file(path_or_fileobj={str(text)!r}, path_in_repo="vocab.txt", repo_id="acme/packed")
api.upload_file(path_or_fileobj={str(floats)!r}, path_in_repo="weights.bin", repo_id="acme/packed")
"""
    check(run_hf(env_for(hub_server, tmp_path / "up"), code))
    xorbs = (repo_dir(hub_server, "acme/packed") / "xet" / "xorbs").glob("*[0-9a-f]")
    schemes = set().union(*(chunk_schemes(p.read_bytes()) for p in xorbs if p.suffix != ".idx"))
    assert 2 in schemes, schemes
    code = """
from huggingface_hub import hf_hub_download
print(hf_hub_download("acme/packed", "vocab.txt")); print(hf_hub_download("acme/packed", "weights.bin"))
"""
    a, b = check(run_hf(env_for(hub_server, tmp_path / "down", token=None), code)).split()
    assert Path(a).read_bytes() == text.read_bytes() and Path(b).read_bytes() == floats.read_bytes()
    assert urllib.request.urlopen(f"{hub_server.endpoint}/acme/packed/resolve/main/weights.bin").read() == \
        floats.read_bytes()


def test_xet_files_download_over_plain_http_and_with_xet_disabled(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/plain")
    data = random_file(tmp_path / "w.bin", 5_000_000, 4).read_bytes()
    code = f"from huggingface_hub import HfApi; HfApi().upload_file(path_or_fileobj={str(tmp_path / 'w.bin')!r}, " \
           f"path_in_repo='w.bin', repo_id='acme/plain')"
    check(run_hf(env_for(hub_server, tmp_path / "up"), code))
    assert "xetHash" in tree(hub_server, "acme/plain")["w.bin"]
    # An old client: GET resolve, follow the redirect, get the bytes the server reassembled.
    plain = urllib.request.urlopen(f"{hub_server.endpoint}/acme/plain/resolve/main/w.bin").read()
    assert plain == data
    code = "from huggingface_hub import hf_hub_download; print(hf_hub_download('acme/plain', 'w.bin'))"
    path = check(run_hf(env_for(hub_server, tmp_path / "nox", token=None, HF_HUB_DISABLE_XET="1"), code)).strip()
    assert Path(path).read_bytes() == data
    # detrq's own client reads the Xet file through the same resolve route.
    proc = run_detrq(hub_env(hub_server.endpoint, tmp_path / "detrq"), "pull", "--hf-repo", "acme/plain",
                     "--local-dir", str(tmp_path / "pulled"))
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "pulled" / "w.bin").read_bytes() == data


def test_a_repository_mixes_lfs_and_xet_files(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/mixed")
    lfs = random_file(tmp_path / "lfs.bin", 2_000_000, 5)
    xet = random_file(tmp_path / "xet.bin", 2_000_000, 6)
    up = "from huggingface_hub import HfApi; HfApi().upload_file(path_or_fileobj={!r}, path_in_repo={!r}, " \
         "repo_id='acme/mixed')"
    check(run_hf(env_for(hub_server, tmp_path / "u1", HF_HUB_DISABLE_XET="1"), up.format(str(lfs), "lfs.bin")))
    check(run_hf(env_for(hub_server, tmp_path / "u2"), up.format(str(xet), "xet.bin")))
    files = tree(hub_server, "acme/mixed")
    assert "xetHash" not in files["lfs.bin"] and "xetHash" in files["xet.bin"]
    code = "from huggingface_hub import snapshot_download; print(snapshot_download('acme/mixed'))"
    snap = Path(check(run_hf(env_for(hub_server, tmp_path / "d", token=None), code)).strip())
    assert (snap / "lfs.bin").read_bytes() == lfs.read_bytes()
    assert (snap / "xet.bin").read_bytes() == xet.read_bytes()


# ---- hostile and broken uploads, spoken to the CAS directly -------------------------------------------

def call(url, method="GET", token=None, body=None):
    req = urllib.request.Request(url, method=method, data=body)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def xet_token(server, repo, kind, hub_token=WRITE_TOKEN):
    status, body = call(f"{server.endpoint}/api/models/{repo}/xet-{kind}-token/main", token=hub_token)
    assert status == 200, body
    info = json.loads(body)
    return info["accessToken"], info["casUrl"]


def one_chunk_xorb(data):
    """A xorb of one uncompressed chunk (header: version 0, u24 size, scheme 0, u24 size)."""
    n = struct.pack("<I", len(data))[:3]
    return b"\0" + n + b"\0" + n + data


def xet_hex(digest):
    return "".join(digest[i:i + 8][::-1].hex() for i in range(0, 32, 8))


def chunk_name(data):
    blake3 = pytest.importorskip("blake3", reason="the blake3 package (requirements-test.txt) is not installed")
    return xet_hex(blake3.blake3(data, key=DATA_KEY).digest())  # one chunk: the xorb hash is the chunk hash


def stored(server, repo, sub):
    d = repo_dir(server, repo) / "xet" / sub
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_a_xorb_that_does_not_hash_to_its_name_is_refused(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/h")
    token, cas = xet_token(hub_server, "acme/h", "write")
    data = os.urandom(10_000)
    name = chunk_name(data)
    wrong = name[:-1] + ("0" if name[-1] != "0" else "1")
    status, body = call(f"{cas}/v1/xorbs/default/{wrong}", "POST", token, one_chunk_xorb(data))
    assert status == 400 and b"not to its name" in body
    assert stored(hub_server, "acme/h", "xorbs") == []
    assert list((repo_dir(hub_server, "acme/h") / "tmp").iterdir()) == []
    status, body = call(f"{cas}/v1/xorbs/default/{name}", "POST", token, one_chunk_xorb(data))
    assert status == 200 and json.loads(body) == {"was_inserted": True}


def shard_naming(xorb_hex, file_hash_hex, nbytes):
    def h(x):
        raw = bytes.fromhex(x)
        return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8))
    out = SHARD_TAG + struct.pack("<QQ", 2, 200)
    out += h(file_hash_hex) + struct.pack("<IIQ", 0, 1, 0)
    out += h(xorb_hex) + struct.pack("<IIII", 0, nbytes, 0, 1)
    out += b"\xff" * 32 + bytes(16)  # end of the file section
    out += b"\xff" * 32 + bytes(16)  # end of the xorb section
    return out


def test_a_shard_naming_missing_xorbs_is_refused(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/s")
    token, cas = xet_token(hub_server, "acme/s", "write")
    status, body = call(f"{cas}/v1/shards", "POST", token, shard_naming("ab" * 32, "cd" * 32, 100))
    assert status == 400 and b"was not uploaded" in body
    assert stored(hub_server, "acme/s", "files") == [] and stored(hub_server, "acme/s", "sha256") == []


def test_tokens_never_cross_repositories_and_read_tokens_never_write(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/a")
    create_repo(hub_server, tmp_path, "acme/b")
    token_a, cas_a = xet_token(hub_server, "acme/a", "write")
    _, cas_b = xet_token(hub_server, "acme/b", "write")
    read_b, _ = xet_token(hub_server, "acme/b", "read", hub_token=READ_TOKEN)
    data = os.urandom(5000)
    name = chunk_name(data)
    status, body = call(f"{cas_b}/v1/xorbs/default/{name}", "POST", token_a, one_chunk_xorb(data))
    assert status == 403 and b"acme/a" in body
    status, _ = call(f"{cas_b}/v1/xorbs/default/{name}", "POST", read_b, one_chunk_xorb(data))
    assert status == 403
    status, _ = call(f"{cas_b}/v1/shards", "POST", read_b, shard_naming(name, "cd" * 32, 5000))
    assert status == 403
    status, _ = call(f"{cas_b}/v1/xorbs/default/{name}", "POST", "made-up-token", one_chunk_xorb(data))
    assert status == 401
    assert stored(hub_server, "acme/b", "xorbs") == [] and stored(hub_server, "acme/b", "files") == []
    # A read-only Hub token gets no write token at all.
    status, _ = call(f"{hub_server.endpoint}/api/models/acme/b/xet-write-token/main", token=READ_TOKEN)
    assert status == 403


def test_a_cut_upload_leaves_nothing_and_a_retry_works(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/cut")
    token, cas = xet_token(hub_server, "acme/cut", "write")
    data = os.urandom(3_000_000)
    xorb = one_chunk_xorb(data[:1_000_000])
    name = chunk_name(data[:1_000_000])
    conn = http.client.HTTPConnection("127.0.0.1", hub_server.port, timeout=30)
    conn.putrequest("POST", f"/xet-cas/models/acme/cut/v1/xorbs/default/{name}")
    conn.putheader("Authorization", f"Bearer {token}")
    conn.putheader("Content-Length", str(len(xorb)))
    conn.endheaders()
    conn.send(xorb[: len(xorb) // 2])
    conn.close()  # the connection dies mid-body
    assert wait_for_empty(repo_dir(hub_server, "acme/cut") / "tmp")
    assert stored(hub_server, "acme/cut", "xorbs") == []
    status, body = call(f"{cas}/v1/xorbs/default/{name}", "POST", token, xorb)
    assert status == 200 and json.loads(body)["was_inserted"]
    # And a real client finishes an upload of content that overlaps the half-sent xorb.
    (tmp_path / "c.bin").write_bytes(data)
    code = f"from huggingface_hub import HfApi; HfApi().upload_file(path_or_fileobj={str(tmp_path / 'c.bin')!r}, " \
           f"path_in_repo='c.bin', repo_id='acme/cut')"
    check(run_hf(env_for(hub_server, tmp_path / "up"), code))
    back = urllib.request.urlopen(f"{hub_server.endpoint}/acme/cut/resolve/main/c.bin").read()
    assert back == data


def wait_for_empty(d, seconds=15.0):
    import time
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not d.exists() or not list(d.iterdir()):
            return True
        time.sleep(0.1)
    return False


def test_ten_concurrent_uploaders_with_shared_chunks_all_reconstruct(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/many")
    shared = random.Random(7).randbytes(2_000_000)
    files = []
    procs = []
    for i in range(10):
        p = tmp_path / f"f{i}.bin"
        p.write_bytes(shared + random.Random(100 + i).randbytes(500_000) + shared[: 300_000 * (i % 3)])
        files.append(p)
        code = f"from huggingface_hub import HfApi; HfApi().upload_file(path_or_fileobj={str(p)!r}, " \
               f"path_in_repo='f{i}.bin', repo_id='acme/many')"
        procs.append(subprocess.Popen([PYTHON, "-c", code], env=env_for(hub_server, tmp_path / f"h{i}"),
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, out + err
    code = "from huggingface_hub import snapshot_download; print(snapshot_download('acme/many'))"
    snap = Path(check(run_hf(env_for(hub_server, tmp_path / "d", token=None), code)).strip())
    for i, p in enumerate(files):
        assert (snap / f"f{i}.bin").read_bytes() == p.read_bytes(), i


def test_one_client_uploads_the_same_bytes_to_two_repositories(hub_server, tmp_path):
    # Each repository keeps its own xorbs, so its CAS URL is its own: hf_xet's local dedup cache (kept per
    # CAS URL) must not make a shard for repo B point at xorbs that only repo A holds.
    data = random_file(tmp_path / "same.bin", 3_000_000, 11)
    code = f"""
from huggingface_hub import HfApi, hf_hub_download
api = HfApi()
for repo in ["acme/one", "acme/two"]:
    api.create_repo(repo)
    api.upload_file(path_or_fileobj={str(data)!r}, path_in_repo="same.bin", repo_id=repo)
    print(hf_hub_download(repo, "same.bin"))
"""
    paths = check(run_hf(env_for(hub_server, tmp_path / "home"), code)).split()
    assert [Path(p).read_bytes() for p in paths] == [data.read_bytes()] * 2
    assert stored(hub_server, "acme/one", "xorbs") == stored(hub_server, "acme/two", "xorbs") != []


def test_a_reconstruction_of_a_byte_range_yields_exactly_those_bytes(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/range")
    data = random_file(tmp_path / "r.bin", 3_000_000, 12).read_bytes()  # random: stored uncompressed
    code = f"from huggingface_hub import HfApi; HfApi().upload_file(path_or_fileobj={str(tmp_path / 'r.bin')!r}, " \
           f"path_in_repo='r.bin', repo_id='acme/range')"
    check(run_hf(env_for(hub_server, tmp_path / "up"), code))
    file_hash = tree(hub_server, "acme/range")["r.bin"]["xetHash"]
    token, cas = xet_token(hub_server, "acme/range", "read", hub_token=READ_TOKEN)
    for first, last in [(0, 99), (1_000_000, 1_999_999), (2_999_990, 2_999_999), (123_457, 2_800_001)]:
        req = urllib.request.Request(f"{cas}/v1/reconstructions/{file_hash}",
                                     headers={"Authorization": f"Bearer {token}", "Range": f"bytes={first}-{last}"})
        recon = json.load(urllib.request.urlopen(req))
        out = b""
        for term in recon["terms"]:
            fetch = next(f for f in recon["fetch_info"][term["hash"]] if f["range"] == term["range"])
            ranged = urllib.request.Request(fetch["url"], headers={
                "Range": f"bytes={fetch['url_range']['start']}-{fetch['url_range']['end']}"})
            raw = urllib.request.urlopen(ranged).read()
            pos = 0
            while pos < len(raw):  # chunk header: version, u24 size, scheme, u24 size
                assert raw[pos + 4] == 0, "expected an uncompressed chunk"
                n = int.from_bytes(raw[pos + 1:pos + 4], "little")
                out += raw[pos + 8:pos + 8 + n]
                pos += 8 + n
        start = recon["offset_into_first_range"]
        assert out[start:start + last - first + 1] == data[first:last + 1], (first, last)
    status, _ = call(f"{cas}/v1/reconstructions/{file_hash}", token=None)
    assert status == 401


def test_a_private_repository_gives_xet_tokens_only_to_valid_hub_tokens(hub_server, tmp_path):
    data = random_file(tmp_path / "p.bin", 2_000_000, 13)
    code = f"""
from huggingface_hub import HfApi
api = HfApi()
api.create_repo("acme/secret", private=True)
api.upload_file(path_or_fileobj={str(data)!r}, path_in_repo="p.bin", repo_id="acme/secret")
"""
    check(run_hf(env_for(hub_server, tmp_path / "up"), code))
    code = "from huggingface_hub import hf_hub_download; print(hf_hub_download('acme/secret', 'p.bin'))"
    path = check(run_hf(env_for(hub_server, tmp_path / "reader", token=READ_TOKEN), code)).strip()
    assert Path(path).read_bytes() == data.read_bytes()
    status, _ = call(f"{hub_server.endpoint}/api/models/acme/secret/xet-read-token/main")
    assert status == 401
    status, _ = call(f"{hub_server.endpoint}/api/models/acme/secret/xet-read-token/main", token="hf_made_up")
    assert status == 401


def hand_made_shard(file_hash_hex, xorb_hex, nbytes, sha_hex):
    def h(x):
        raw = bytes.fromhex(x)
        return b"".join(raw[i:i + 8][::-1] for i in range(0, 32, 8))
    out = SHARD_TAG + struct.pack("<QQ", 2, 200)
    out += h(file_hash_hex) + struct.pack("<IIQ", 1 << 30, 1, 0)
    out += h(xorb_hex) + struct.pack("<IIII", 0, nbytes, 0, 1)
    out += h(sha_hex) + bytes(16)
    return out + b"\xff" * 32 + bytes(16) + b"\xff" * 32 + bytes(16)


def test_a_shard_is_checked_against_its_file_hash_and_sha256(hub_server, tmp_path):
    blake3 = pytest.importorskip("blake3", reason="the blake3 package (requirements-test.txt) is not installed")
    create_repo(hub_server, tmp_path, "acme/shard")
    token, cas = xet_token(hub_server, "acme/shard", "write")
    data = os.urandom(20_000)
    name = chunk_name(data)
    assert call(f"{cas}/v1/xorbs/default/{name}", "POST", token, one_chunk_xorb(data))[0] == 200
    # One chunk: the merkle root is the chunk hash; the file hash keys it once more with a zero key.
    root = bytes.fromhex(name)
    root = b"".join(root[i:i + 8][::-1] for i in range(0, 32, 8))
    file_hash = xet_hex(blake3.blake3(root, key=bytes(32)).digest())
    sha = hashlib.sha256(data).hexdigest()
    bad_hash = "ee" * 32
    for shard, why in [(hand_made_shard(bad_hash, name, len(data), sha), b"its chunks hash to"),
                       (hand_made_shard(file_hash, name, len(data), "00" * 32), b"sha256"),
                       (hand_made_shard(file_hash, name, len(data) + 1, sha), b"byte count")]:
        status, body = call(f"{cas}/v1/shards", "POST", token, shard)
        assert status == 400 and why in body, body
        assert stored(hub_server, "acme/shard", "files") == [] and stored(hub_server, "acme/shard", "sha256") == []
    status, body = call(f"{cas}/v1/shards", "POST", token, hand_made_shard(file_hash, name, len(data), sha))
    assert status == 200, body
    # The commit names the file by its sha256, as huggingface_hub does; then any client can read it.
    commit = "\n".join(json.dumps(x) for x in [
        {"key": "header", "value": {"summary": "hand-made xet upload"}},
        {"key": "lfsFile", "value": {"path": "hand.bin", "algo": "sha256", "oid": sha, "size": len(data)}}])
    status, body = call(f"{hub_server.endpoint}/api/models/acme/shard/commit/main", "POST", WRITE_TOKEN,
                        commit.encode())
    assert status == 200, body
    assert tree(hub_server, "acme/shard")["hand.bin"]["xetHash"] == file_hash
    assert urllib.request.urlopen(f"{hub_server.endpoint}/acme/shard/resolve/main/hand.bin").read() == data


class CutFirstXorbUpload:
    """A loopback proxy that forwards requests one by one and, for the first xorb upload, passes on only
    half of the body and then drops both connections: hf_xet's upload dies mid-body and must retry."""

    def __init__(self, upstream_port):
        import socket
        import threading
        self.socket, self.threading = socket, threading
        self.upstream_port = upstream_port
        self.cut = False
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _pump_down(self, upstream, client):
        try:
            while data := upstream.recv(1 << 20):
                client.sendall(data)
        except OSError:
            pass
        client.close()

    def _serve(self, client):
        upstream = self.socket.create_connection(("127.0.0.1", self.upstream_port))
        self.threading.Thread(target=self._pump_down, args=(upstream, client), daemon=True).start()
        buf = b""
        try:
            while True:
                while b"\r\n\r\n" not in buf:
                    data = client.recv(1 << 16)
                    if not data:
                        return
                    buf += data
                head, buf = buf.split(b"\r\n\r\n", 1)
                length = next((int(l.split(b":", 1)[1]) for l in head.split(b"\r\n")[1:]
                               if l.lower().startswith(b"content-length:")), 0)
                while len(buf) < length:
                    data = client.recv(1 << 20)
                    if not data:
                        return
                    buf += data
                body, buf = buf[:length], buf[length:]
                if not self.cut and b"/v1/xorbs/" in head.split(b"\r\n", 1)[0] and length > 1000:
                    self.cut = True
                    upstream.sendall(head + b"\r\n\r\n" + body[: length // 2])
                    return
                upstream.sendall(head + b"\r\n\r\n" + body)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.shutdown(self.socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()

    def close(self):
        self.listener.close()


def test_hf_xet_retries_an_upload_cut_mid_xorb_and_nothing_partial_is_kept(hub_server, tmp_path):
    create_repo(hub_server, tmp_path, "acme/retry")
    data = random_file(tmp_path / "r.bin", 6_000_000, 14)
    proxy = CutFirstXorbUpload(hub_server.port)
    try:
        code = f"from huggingface_hub import HfApi; HfApi().upload_file(path_or_fileobj={str(data)!r}, " \
               f"path_in_repo='r.bin', repo_id='acme/retry')"
        check(run_hf(hub_env(proxy.endpoint, tmp_path / "up", WRITE_TOKEN), code))
    finally:
        proxy.close()
    assert proxy.cut, "the proxy never saw a xorb upload to cut"
    assert wait_for_empty(repo_dir(hub_server, "acme/retry") / "tmp")
    # The half-sent body was dropped with its temporary file; what is kept serves the exact bytes.
    assert urllib.request.urlopen(f"{hub_server.endpoint}/acme/retry/resolve/main/r.bin").read() == data.read_bytes()


def test_a_dataset_repository_stores_and_serves_xet_files(hub_server, tmp_path):
    data = random_file(tmp_path / "d.bin", 2_000_000, 15)
    code = f"""
from huggingface_hub import HfApi, hf_hub_download
api = HfApi()
api.create_repo("acme/data", repo_type="dataset")
api.upload_file(path_or_fileobj={str(data)!r}, path_in_repo="d.bin", repo_id="acme/data", repo_type="dataset")
print(hf_hub_download("acme/data", "d.bin", repo_type="dataset"))
"""
    path = check(run_hf(env_for(hub_server, tmp_path / "home"), code)).strip()
    assert Path(path).read_bytes() == data.read_bytes()
    assert len(list((hub_server.root / "datasets" / "acme" / "data" / "xet" / "files").iterdir())) == 1
