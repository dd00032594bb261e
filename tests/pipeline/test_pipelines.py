"""The maintainer pipeline against a real `detrq hub-server` and a loopback image server, then the user
pipeline from that Hub, `detect` on a real image; the dry run, each skip flag, an interrupted run resumed,
and engine files that must be refused (corrupt, packed for CPU features the running target lacks)."""
import json
import os
import signal
import subprocess
import time

from PIL import Image

from conftest import (DETRQ, MODEL, PYTHON, SOURCE, VAL, check_card_against_run, hub_env, make_qdq_model,
                      require_fixtures, run_detrq, val_subset)


def check_card_names_what_a_hub_reader_needs(card, work, tmp_path):
    """The classes (the model's metadata, read with onnx), the layers the Q/DQ ONNX leaves in float (read with
    onnx: a Conv/MatMul/Gemm not reading DequantizeLinear outputs), the report link, what the cache covers (its
    lines), and no path of the maintainer's machine."""
    import onnx

    meta = {p.key: p.value for p in onnx.load(MODEL, load_external_data=False).metadata_props}
    names = json.loads(meta["class_names"])
    assert ", ".join(f"{k}: {v}" for k, v in sorted(names.items(), key=lambda kv: int(kv[0]))) in card, card
    g = onnx.load(str(work / "inference_model.qdq.onnx")).graph
    producer = {o: n.op_type for n in g.node for o in n.output}
    layers = [n for n in g.node if n.op_type in ("Conv", "MatMul", "Gemm")]
    floats = [n.name for n in layers if not all(producer.get(t) == "DequantizeLinear" for t in n.input[:2])]
    assert f"{len(layers) - len(floats)} of the {len(layers)} Conv/MatMul/Gemm layers run in INT8" in card, card
    for name in floats:
        assert f"| `{name}` |" in card, name
    assert "[report.html](report.html)" in card
    scales = len((work / "calibration.cache").read_text().splitlines()) - 1
    assert f"The cache holds the scales of {scales} tensors" in card, card
    assert str(tmp_path) not in card and "calibration_images" not in card, card

REPO = "acme/rfdetr-shapes-int8"
STEPS = ["export", "fetch-calibration-images", "calibration-tensors", "calibrate", "evaluate", "model-card", "upload"]


def statuses(stdout):
    return {s["name"]: s["status"] for s in json.loads(stdout)["steps"]}


def prepare_args(work, base_url, ids_file, subset, *extra):
    return ["--json", "prepare", "--onnx", MODEL, "--work-dir", work, "--calibration-base-url", base_url,
            "--calibration-ids", ids_file, "--calibration-images", "6", "--eval-images", VAL,
            "--eval-annotations", subset, *extra]


def test_maintainer_then_user_pipeline(tmp_path, hub, image_server):
    base_url, ids_file, _ = image_server
    env = hub_env(hub.endpoint, tmp_path)
    work = tmp_path / "work"
    subset = val_subset(tmp_path, 8)
    r = run_detrq(*prepare_args(work, base_url, ids_file, subset, "--hf-repo", REPO), env=env)
    st = statuses(r.stdout)
    assert st == {"export": "skipped", "fetch-calibration-images": "ran", "calibration-tensors": "ran",
                  "calibrate": "ran", "evaluate": "ran", "model-card": "ran", "upload": "ran"}
    assert len([n for n in os.listdir(work / "calibration_images") if n.endswith(".jpg")]) == 6

    # What the Hub holds, as huggingface_hub sees it.
    code = f"""
import json
from huggingface_hub import HfApi, ModelCard
files = sorted(s.rfilename for s in HfApi().model_info("{REPO}").siblings)
card = ModelCard.load("{REPO}")
print(json.dumps({{"files": files, "license": card.data.license, "pipeline_tag": card.data.pipeline_tag,
                   "tags": card.data.tags, "text": card.text}}))
"""
    hf = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert hf.returncode == 0, hf.stderr
    info = json.loads(hf.stdout)
    assert set(info["files"]) - {".gitattributes"} == {"README.md", "calibration.cache", "calibration.json",
                                                       "inference_model.onnx", "inference_model.qdq.onnx", "report.html"}
    assert info["license"] == "apache-2.0"
    assert info["pipeline_tag"] == "object-detection"
    assert "int8" in info["tags"]
    assert "trtexec --onnx=inference_model.qdq.onnx --stronglyTyped" in info["text"]
    # The card on the Hub against the run: 6 images downloaded, 6 tensors, half (3) held out, so 3 calibrated.
    assert check_card_against_run(info["text"], r.stderr, work) == 3
    check_card_names_what_a_hub_reader_needs(info["text"], work, tmp_path)
    assert "AP FP32" in r.stderr and "| AP50 |" in info["text"]

    # A second run has nothing to do, upload included.
    again = statuses(run_detrq(*prepare_args(work, base_url, ids_file, subset, "--hf-repo", REPO), env=env).stdout)
    assert set(again.values()) <= {"skipped", "up to date"}, again
    assert again["upload"] == "up to date"

    # The user pipeline, from the Hub.
    engine = tmp_path / "user" / "model.engine"
    r = run_detrq("--json", "build-engine", "--hf-repo", REPO, "--output", engine, "--backend", "cpu", env=env)
    assert statuses(r.stdout) == {"pull": "ran", "build": "ran"}
    assert engine.exists()
    again = statuses(run_detrq("--json", "build-engine", "--hf-repo", REPO, "--output", engine, "--backend", "cpu",
                               env=env).stdout)
    assert again == {"pull": "ran", "build": "up to date"}

    # detect with the engine on a real image: JSON on stdout, a PNG with the boxes drawn.
    gt = json.load(open(os.path.join(VAL, "instances.json")))
    image = os.path.join(VAL, gt["images"][0]["file_name"])
    out = tmp_path / "drawn"
    r = run_detrq("detect", "--engine", engine, image, "--threshold", "0.3", "--out", out, env=env)
    result = json.loads(r.stdout)[0]
    truth = [a for a in gt["annotations"] if a["image_id"] == gt["images"][0]["id"]]
    names = {c["id"]: c["name"] for c in gt["categories"]}
    assert result["detections"], "no detection on a validation image"
    assert {d["label"] for d in result["detections"]} & {names[a["category_id"]] for a in truth}
    with Image.open(result["drawn"]) as im:
        assert im.size == (result["width"], result["height"])


def test_dry_run_describes_and_touches_nothing(tmp_path):
    require_fixtures()
    work = tmp_path / "work"
    r = run_detrq("prepare", "--skip-upload", "--dry-run", "--work-dir", work)
    for i, name in enumerate(STEPS):
        assert f"{i + 1}. {name} [" in r.stdout, r.stdout
    assert "command:   detrq calibrate --onnx" in r.stdout
    assert f"output:    {work / 'inference_model.qdq.onnx'}" in r.stdout
    assert "input:" in r.stdout
    assert not work.exists()
    engine = tmp_path / "m.engine"
    r = run_detrq("build-engine", "--qdq", MODEL, "--output", engine, "--dry-run")
    assert "1. build [would run" in r.stdout and not engine.exists()


def test_skip_flags(tmp_path, image_server):
    base_url, ids_file, _ = image_server
    work = tmp_path / "work"
    # --skip-export needs the model in the work folder; the error says which flag and file.
    r = run_detrq("prepare", "--skip-upload", "--skip-export", "--work-dir", work, "--calibration-dir",
                  os.path.join(SOURCE, "data", "shapes_calib"), check=False)
    assert r.returncode == 2
    assert "--skip-export" in r.stderr and "inference_model.onnx" in r.stderr
    # --skip-calibration-download needs the images.
    r = run_detrq("prepare", "--skip-upload", "--onnx", MODEL, "--work-dir", work, "--calibration-base-url", base_url,
                  "--skip-calibration-download", check=False)
    assert r.returncode == 2 and "--skip-calibration-download" in r.stderr
    # With the files in place, the skipped steps are skipped and the rest runs; --skip-upload needs no Hub.
    work.mkdir(exist_ok=True)
    os.link(MODEL, work / "inference_model.onnx")
    (work / "calibration_images").mkdir()
    for name in sorted(n for n in os.listdir(os.path.join(SOURCE, "data", "shapes_calib")) if n.endswith(".jpg"))[:4]:
        os.link(os.path.join(SOURCE, "data", "shapes_calib", name), work / "calibration_images" / name)
    r = run_detrq("--json", "prepare", "--skip-upload", "--skip-export", "--skip-calibration-download", "--work-dir", work,
                  "--calibration-base-url", base_url, "--calibration-images", "4")
    st = statuses(r.stdout)
    assert st["export"] == "skipped" and st["fetch-calibration-images"] == "skipped" and st["upload"] == "skipped"
    assert st["calibrate"] == "ran" and (work / "inference_model.qdq.onnx").exists()
    # Without --hf-repo, uploading is refused up front.
    r = run_detrq("prepare", "--onnx", MODEL, "--work-dir", work, check=False)
    assert r.returncode == 2 and "--hf-repo" in r.stderr


def test_interrupted_run_resumes(tmp_path, image_server):
    base_url, ids_file, _ = image_server
    work = tmp_path / "work"
    args = [DETRQ, "--json", "prepare", "--skip-upload", "--onnx", MODEL, "--work-dir", str(work), "--calibration-base-url",
            base_url, "--calibration-ids", str(ids_file), "--calibration-images", "6"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # Kill it once the tensors are recorded (calibration is then under way), or give up after 300 s.
    state = work / ".detrq-state.json"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and "calibration-tensors" in state.read_text():
            break
        time.sleep(0.05)
    assert proc.poll() is None, "prepare finished before it could be interrupted"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (work / "calibration.json").exists()
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    st = statuses(r.stdout)
    assert st["fetch-calibration-images"] == "up to date"
    assert st["calibration-tensors"] == "up to date"
    assert st["calibrate"] == "ran"
    assert (work / "inference_model.qdq.onnx").exists()


def test_engines_that_must_be_refused(tmp_path):
    require_fixtures()
    engine = tmp_path / "model.engine"
    run_detrq("build-engine", "--onnx", MODEL, "--output", engine, "--backend", "cpu")
    image = os.path.join(VAL, sorted(n for n in os.listdir(VAL) if n.endswith(".jpg"))[0])
    run_detrq("detect", "--engine", engine, image)
    # A flipped byte in the weights.
    data = bytearray(engine.read_bytes())
    data[-100] ^= 0x40
    corrupt = tmp_path / "corrupt.engine"
    corrupt.write_bytes(bytes(data))
    r = run_detrq("detect", "--engine", corrupt, image, check=False)
    assert r.returncode == 3
    assert f"detrq: error: {corrupt}: not a valid detrq engine file" in r.stderr
    assert "rebuild" in r.stderr
    # Truncated.
    truncated = tmp_path / "truncated.engine"
    truncated.write_bytes(engine.read_bytes()[:1000])
    r = run_detrq("detect", "--engine", truncated, image, check=False)
    assert r.returncode == 3 and "truncated" in r.stderr
    # Packed for CPU features the running target lacks: an int8 engine packed for AVX-512 VNNI (any machine can
    # build it: packing is data layout), run with the target narrowed to none of the vector features.
    foreign = tmp_path / "foreign.engine"
    run_detrq("build-engine", "--qdq", make_qdq_model(tmp_path), "--output", foreign, "--backend", "cpu",
              "--cpu-features", "avx2,fma,avx512f,avx512bw,avx512vnni")
    r = run_detrq("detect", "--engine", foreign, "--cpu-features", "none", image, check=False)
    assert r.returncode == 4, r.stderr
    assert ("engine was built for CPU features this CPU lacks: avx512f, avx512bw, avx512vnni (this CPU has: none of "
            "those detrq uses, as narrowed by --cpu-features)") in r.stderr, r.stderr
    # Asking to run with a feature no x86 CPU has heard of, or one this CPU lacks, is refused before loading.
    r = run_detrq("detect", "--engine", engine, "--cpu-features", "avx1024", image, check=False)
    assert r.returncode == 2 and "unknown CPU feature 'avx1024'" in r.stderr, r.stderr
    host = json.loads(run_detrq("--json", "inspect", MODEL).stdout)["cpu_target"]
    lacking = next((f for f in ["amx-int8", "amx-bf16", "avx512bf16", "avxvnni", "avx512vnni"] if f not in host), None)
    if lacking is not None:
        r = run_detrq("detect", "--engine", engine, "--cpu-features", f"avx2,{lacking}", image, check=False)
        assert r.returncode == 4 and f"--cpu-features: this CPU lacks {lacking}" in r.stderr, r.stderr
