"""Records the seed corpora of hub_server_fuzzer and hub_answers_fuzzer from real traffic: a real
`detrq hub-server` behind a recording TCP relay, driven by the real huggingface_hub client (create_repo,
upload_file of a text file and of binary files through classic LFS and through Xet, create_commit with a
deletion, model_info, list_repo_tree, hf_hub_download, snapshot_download) and by `detrq publish`/`detrq pull`.
Each connection's client bytes become one hub_server seed (named after its first request line); each JSON
answer body becomes one hub_answers seed. The tokens and the repository (org/model) are the fuzz target's; Xet access
tokens become a placeholder the target fills in.
Usage: record_hub_seeds.py DETRQ_BINARY [CORPUS_ROOT]. Run with the pinned .venv python (huggingface_hub,
hf_xet); the output is committed."""
import hashlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading

detrq = sys.argv[1]
root = sys.argv[2] if len(sys.argv) > 2 else os.path.join(os.path.dirname(__file__), "corpus")
requests_out = os.path.join(root, "hub_server")
answers_out = os.path.join(root, "hub_answers")
os.makedirs(requests_out, exist_ok=True)
os.makedirs(answers_out, exist_ok=True)
WRITE, READ = "fuzz-write-token", "fuzz-read-token"
MAX_SEED = 60 * 1024

connections = []  # (client bytes, server bytes)
lock = threading.Lock()


def relay(listener, upstream_port):
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        server = socket.create_connection(("127.0.0.1", upstream_port))
        record = [bytearray(), bytearray()]
        with lock:
            connections.append(record)

        def pump(src, dst, buf):
            try:
                while True:
                    data = src.recv(65536)
                    if not data:
                        break
                    buf += data
                    dst.sendall(data)
            except OSError:
                pass
            try:
                dst.shutdown(socket.SHUT_WR)
            except OSError:
                pass

        threading.Thread(target=pump, args=(client, server, record[0]), daemon=True).start()
        threading.Thread(target=pump, args=(server, client, record[1]), daemon=True).start()


def hf(env, code):
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


with tempfile.TemporaryDirectory() as work:
    tokens = os.path.join(work, "tokens.txt")
    with open(tokens, "w") as f:
        f.write(f"{WRITE} write\n{READ} read\n")
    # Objects of 1 MB and more are uploaded in parts (the multipart LFS answer and routes).
    proc = subprocess.Popen([detrq, "hub-server", "--root", os.path.join(work, "root"), "--port", "0", "--tokens", tokens,
                             "--multipart-mb", "1"],
                            stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline().split()[-1].rsplit(":", 1)[1])
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    threading.Thread(target=relay, args=(listener, port), daemon=True).start()
    endpoint = f"http://127.0.0.1:{listener.getsockname()[1]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE_"))}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=os.path.join(work, "hf"), HF_TOKEN=WRITE, HF_HUB_DISABLE_TELEMETRY="1",
               HF_HUB_DISABLE_PROGRESS_BARS="1")
    files = os.path.join(work, "files")
    os.makedirs(files)
    # Not README.md: huggingface_hub validates a model card through /api/validate-yaml, which hub-server lacks.
    with open(os.path.join(files, "config.json"), "w") as f:
        f.write('{"architectures": ["RFDETR"], "num_labels": 3}\n')
    with open(os.path.join(files, "weights.bin"), "wb") as f:
        f.write(bytes(range(256)) * 16)
    with open(os.path.join(files, "parts.bin"), "wb") as f:
        f.write(b"\0" + bytes(range(256)) * 4500)  # 1.1 MB: multipart
    with open(os.path.join(files, "xet.bin"), "wb") as f:
        f.write((b"\0xet" + hashlib.sha256(b"xet").digest()) * 180)  # binary: an LFS file, sent over Xet
    try:
        hf(env, f"""
from huggingface_hub import HfApi
api = HfApi()
api.create_repo("org/model")
api.upload_file(path_or_fileobj={os.path.join(files, 'config.json')!r}, path_in_repo="config.json", repo_id="org/model")
""")
        classic = dict(env, HF_HUB_DISABLE_XET="1")
        hf(classic, f"""
from huggingface_hub import HfApi
HfApi().upload_file(path_or_fileobj={os.path.join(files, 'weights.bin')!r}, path_in_repo="weights.bin", repo_id="org/model")
""")
        # Its own process, so its megabytes of parts do not share a connection (a seed) with the small upload.
        hf(classic, f"""
from huggingface_hub import HfApi
HfApi().upload_file(path_or_fileobj={os.path.join(files, 'parts.bin')!r}, path_in_repo="parts.bin", repo_id="org/model")
""")
        hf(env, f"""
from huggingface_hub import HfApi
HfApi().upload_file(path_or_fileobj={os.path.join(files, 'xet.bin')!r}, path_in_repo="xet.bin", repo_id="org/model")
""")
        hf(env, """
from huggingface_hub import HfApi, CommitOperationAdd, CommitOperationDelete
api = HfApi()
api.create_commit("org/model", [CommitOperationAdd("notes/a.txt", b"a"), CommitOperationDelete("config.json")],
                  commit_message="add a note, delete the readme")
print(api.model_info("org/model", files_metadata=True).sha)
print([f.path for f in api.list_repo_tree("org/model", recursive=True)])
""")
        hf(classic, f"""
from huggingface_hub import hf_hub_download, snapshot_download
hf_hub_download("org/model", "weights.bin", cache_dir={os.path.join(work, 'c1')!r})
snapshot_download("org/model", cache_dir={os.path.join(work, 'c2')!r})
""")
        hf(env, f"""
from huggingface_hub import hf_hub_download
hf_hub_download("org/model", "xet.bin", cache_dir={os.path.join(work, 'c3')!r})
""")
        detrq_env = dict(env, HF_HOME=os.path.join(work, "detrq-home"))
        subprocess.run([detrq, "publish", "--hf-repo", "org/model", "--file",
                        os.path.join(files, "weights.bin") + ":copy/weights.bin", "--message", "detrq publish"], env=detrq_env, check=False)
        subprocess.run([detrq, "pull", "--hf-repo", "org/model"], env=detrq_env, check=False)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        listener.close()

with lock:
    recorded = list(connections)
# Xet access tokens are random and live only in the server that issued them: the seeds carry a placeholder
# that the fuzz target replaces with a token its own server issued (hub_server_fuzzer.cpp).
xet_tokens = set()
for _, server in recorded:
    xet_tokens.update(re.findall(rb'"accessToken":"([^"]+)"', bytes(server)))
PLACEHOLDER = b"@XET-TOKEN@"
seen = set()
for client, server in recorded:
    client, server = bytes(client), bytes(server)
    for token in xet_tokens:
        client = client.replace(token, PLACEHOLDER)
    if not client:
        continue
    line = client.split(b"\r\n", 1)[0].decode("latin-1")
    label = re.sub(r"[^A-Za-z0-9]+", "_", line.split(" HTTP/")[0].split("?")[0])[:60].strip("_")
    digest = hashlib.sha1(client).hexdigest()[:8]
    if digest not in seen and len(client) <= MAX_SEED:  # a connection carrying MBs of upload is no seed
        seen.add(digest)
        with open(os.path.join(requests_out, f"{label}-{digest}"), "wb") as f:
            f.write(client)
    # The JSON answers, split out of the response stream by their Content-Length.
    at = 0
    while True:
        head_end = server.find(b"\r\n\r\n", at)
        if head_end < 0:
            break
        head = server[at:head_end].decode("latin-1").lower()
        m = re.search(r"content-length: *(\d+)", head)
        n = int(m.group(1)) if m else 0
        body = server[head_end + 4:head_end + 4 + n]
        at = head_end + 4 + n
        if "json" in head.split("content-type:", 1)[-1].split("\r\n", 1)[0] and body and len(body) <= MAX_SEED:  # also git-lfs+json
            name = hashlib.sha1(body).hexdigest()[:8]
            if name not in seen:
                seen.add(name)
                with open(os.path.join(answers_out, f"answer-{name}.json"), "wb") as f:
                    f.write(body)
print(f"{len(os.listdir(requests_out))} request seeds, {len(os.listdir(answers_out))} answer seeds")
