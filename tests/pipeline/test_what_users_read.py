"""What a user reads and types (issue 18): the sign and unit of `eval --compare`, what `hub-server` says it
listens on, the equivalent commands of prepare's plan (run here, one by one), a calibration shortfall, the one
flag vocabulary (old spellings hidden but accepted; every calibration option on `prepare`) and `--count 0`."""
import json
import os
import re
import shlex
import shutil
import subprocess

from conftest import CALIB, DETRQ, MODEL, VAL, hub_env, make_qdq_model, require_fixtures, run_detrq, val_subset


def test_eval_compare_change_is_second_minus_first_and_says_so(tmp_path):
    qdq = make_qdq_model(tmp_path)
    subset = val_subset(tmp_path, 4)
    args = ["eval", "--onnx", MODEL, "--compare", qdq, "--images", VAL, "--annotations", subset, "--threads", "2"]
    j = json.loads(run_detrq("--json", *args).stdout)
    first, second = (r["metrics"] for r in j["results"])
    assert "minus" in j["change_is"]
    for k in first:
        assert j["change"][k] == second[k] - first[k]
    text = run_detrq(*args).stdout
    assert "[2]-[1]: the change, [2] minus [1], in the metrics' unit (0 to 1)" in text, text
    header = next(line for line in text.splitlines() if line.startswith("metric"))
    assert header.split() == ["metric", "[1]", "[2]", "[2]-[1]"], header
    ap = next(line for line in text.splitlines() if line.startswith("AP "))
    a, b, change = (float(x) for x in ap.split()[1:])
    assert change == round(second["AP"] - first["AP"], 4) and abs(b - a - change) <= 1e-4, ap


def start_hub(tmp_path, host):
    proc = subprocess.Popen([DETRQ, "hub-server", "--root", str(tmp_path / f"root-{host}"), "--host", host, "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    proc.terminate()
    _, err = proc.communicate(timeout=30)
    return line, err


def test_hub_server_says_what_it_listens_on_and_warns_beyond_loopback(tmp_path):
    line, err = start_hub(tmp_path, "0.0.0.0")
    assert re.fullmatch(r"serving \S+ on http://0\.0\.0\.0:\d+\n", line), line
    assert "warning" in err and "every network interface" in err and "other machines can reach it" in err, err
    line, err = start_hub(tmp_path, "127.0.0.1")
    assert re.fullmatch(r"serving \S+ on http://127\.0\.0\.1:\d+\n", line), line
    assert "warning" not in err, err


def images_folder(tmp_path, n):
    folder = tmp_path / "my_calibration_set"
    folder.mkdir()
    for name in sorted(n for n in os.listdir(CALIB) if n.endswith(".jpg"))[:n]:
        shutil.copy(os.path.join(CALIB, name), folder / name)
    return folder


def test_the_plans_commands_work_and_calibration_options_reach_prepare(tmp_path):
    require_fixtures()
    images = images_folder(tmp_path, 4)
    subset = val_subset(tmp_path, 3)
    calibration = ["--eval-count", "1", "--exclude", "*/decoder/layers.2/*", "--smooth-alpha", "0.25"]
    common = ["prepare", "--skip-upload", "--onnx", MODEL, "--calibration-dir", images, "--eval-images", VAL,
              "--eval-annotations", subset, "--threads", "2", *calibration]
    plan = tmp_path / "plan"
    steps = json.loads(run_detrq("--json", *common, "--work-dir", plan, "--dry-run").stdout)["steps"]
    assert not plan.exists()
    # Skipped steps (the export of a model given with --onnx, a download of local images) show no command.
    assert {s["name"]: s["command"] for s in steps if s["status"] == "skipped"} == \
        {"export": "", "fetch-calibration-images": "", "upload": ""}
    for s in steps:
        assert all(v != "" for v in s["parameters"].values()), s
    calibrate = next(s for s in steps if s["name"] == "calibrate")["command"]
    assert " --eval-count 1 --exclude '*/decoder/layers.2/*' --smooth-alpha 0.25" in calibrate, calibrate
    # Each printed command, run on its own in order, works and makes the step's outputs.
    for s in steps:
        if not s["command"]:
            continue
        argv = shlex.split(s["command"])
        assert argv[0] == "detrq", argv
        r = subprocess.run([DETRQ, *argv[1:]], capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (s["command"], r.stderr)
        if s["name"] != "evaluate":  # prints the AP table; prepare also keeps it as accuracy.json
            for out in s["outputs"]:
                assert os.path.exists(out), (s["name"], out)
    by_hand = json.loads((plan / "calibration.json").read_text())

    # prepare itself, with the same calibration options: the same decisions as the commands made.
    work = tmp_path / "work"
    run_detrq(*common, "--work-dir", work)
    table = json.loads((work / "calibration.json").read_text())
    assert table["images"] == by_hand["images"] == 3  # 4 tensors, --eval-count 1 held out
    assert table["smoothing"]["alpha"] == 0.25
    layers = {l["node"]: l for l in table["layers"]}
    assert layers == {l["node"]: l for l in by_hand["layers"]}
    excluded = [n for n in layers if re.fullmatch(r".*/decoder/layers\.2/.*", n)]
    assert excluded and all(not layers[n]["int8"] and "--exclude" in layers[n]["reason"] for n in excluded)
    # The card names the dataset by its name, not by a path of this machine.
    card = (work / "README.md").read_text()
    assert "images of my_calibration_set." in card and str(tmp_path) not in card, card


def test_a_calibration_shortfall_fails(tmp_path):
    require_fixtures()
    images = images_folder(tmp_path, 1)
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    args = ["prepare", "--skip-upload", "--onnx", MODEL, "--calibration-dir", images]
    r = run_detrq(*args, "--work-dir", tmp_path / "w1", check=False)
    assert r.returncode == 1, r.stderr
    assert f"detrq: error: {images}: 1 of its images could not be used" in r.stderr, r.stderr
    os.remove(images / "broken.jpg")
    r = run_detrq(*args, "--calibration-images", "3", "--work-dir", tmp_path / "w2", check=False)
    assert r.returncode == 1, r.stderr
    assert "only 1 usable calibration images of the 3 asked for" in r.stderr, r.stderr


def option_names(help_text):
    return set(re.findall(r"^\s+(--[a-z0-9-]+)", help_text, re.M))


def test_one_vocabulary_old_spellings_hidden_every_calibration_option_on_prepare():
    calibrate = run_detrq("calibrate", "--help").stdout
    prepare = run_detrq("prepare", "--help").stdout
    detect = run_detrq("detect", "--help").stdout
    assert {"--cache", "--qdq", "--table", "--report"} <= option_names(calibrate)
    assert not {"--cache-path", "--qdq-out"} & option_names(calibrate), calibrate
    assert "--output-dir" in option_names(detect) and "--out" not in option_names(detect), detect
    # Every option of calibrate's Calibration group is on prepare, under the same name.
    group = calibrate[calibrate.index("Calibration:"):]
    shared = option_names(group)
    assert {"--method", "--exclude", "--include", "--all-tensors", "--eval-count", "--residual-adds"} <= shared
    assert shared <= option_names(prepare), shared - option_names(prepare)
    assert {"--private", "--message"} <= option_names(prepare)


def test_count_zero_means_all_in_fetch_calibration(tmp_path, image_server):
    base_url, ids_file, n = image_server
    out = tmp_path / "all"
    r = run_detrq("--json", "fetch-calibration", "--count", "0", "--ids", ids_file, "--base-url", base_url,
                  "--output-dir", out)
    assert json.loads(r.stdout)["present"] == n
    assert len([f for f in os.listdir(out) if f.endswith(".jpg")]) == n


def test_thread_and_image_counts_are_checked_the_same_way_everywhere(tmp_path):
    require_fixtures()
    image = os.path.join(CALIB, sorted(n for n in os.listdir(CALIB) if n.endswith(".jpg"))[0])
    commands = {
        "tensors": ["tensors", "--input-dir", CALIB, "--output-dir", tmp_path / "t"],
        "detect": ["detect", "--onnx", MODEL, image],
        "eval": ["eval", "--onnx", MODEL, "--images", VAL, "--annotations", os.path.join(VAL, "instances.json")],
        "calibrate": ["calibrate", "--onnx", MODEL, "--images", CALIB, "--cache", tmp_path / "c.cache"],
        "prepare": ["prepare", "--skip-upload", "--work-dir", tmp_path / "p"],
        "build-engine": ["build-engine", "--onnx", MODEL, "--output", tmp_path / "m.engine"],
        "run": ["run", MODEL, "--output-dir", tmp_path / "r"],
    }
    for name, args in commands.items():
        r = run_detrq(*args, "--threads", "-1", check=False)
        assert r.returncode == 2, (name, r.stderr)
        assert "--threads: '-1' is not a whole number 0 or more" in r.stderr, (name, r.stderr)
    r = run_detrq(*commands["eval"], "--max-images", "-3", check=False)
    assert r.returncode == 2 and "--max-images: '-3' is not a whole number 0 or more" in r.stderr, r.stderr
    assert not any((tmp_path / d).exists() for d in ("t", "p", "r"))


def test_prepare_checks_its_inputs_before_any_step(tmp_path):
    require_fixtures()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(open(MODEL, "rb").read()[:5000])
    work = tmp_path / "work"
    r = run_detrq("prepare", "--skip-upload", "--onnx", truncated, "--work-dir", work, check=False)
    assert r.returncode == 3 and f"detrq: error: {truncated}" in r.stderr, r.stderr
    assert not work.exists() and "[fetch" not in r.stderr and "[calibration" not in r.stderr, r.stderr
    r = run_detrq("prepare", "--skip-upload", "--eval-images", tmp_path / "nonexistent", "--work-dir", work, check=False)
    assert r.returncode == 6 and f"{tmp_path / 'nonexistent'}: is not a folder" in r.stderr, r.stderr
    empty = tmp_path / "no_annotations"
    empty.mkdir()
    r = run_detrq("prepare", "--skip-upload", "--eval-images", empty, "--work-dir", work, check=False)
    assert r.returncode == 2 and "holds no instances.json" in r.stderr, r.stderr
    assert not work.exists()


def test_build_engine_checks_the_cache_and_refuses_a_qdq_model_without_qdq(tmp_path):
    require_fixtures()
    junk = tmp_path / "junk.cache"
    junk.write_text("this is not a TensorRT calibration cache\n")
    engine = tmp_path / "m.engine"
    r = run_detrq("build-engine", "--onnx", MODEL, "--cache", junk, "--output", engine, "--backend", "cpu", check=False)
    assert r.returncode == 3 and f"detrq: error: {junk}" in r.stderr, r.stderr
    r = run_detrq("build-engine", "--qdq", MODEL, "--output", engine, "--backend", "cpu", check=False)
    assert r.returncode == 3 and "it is not a Q/DQ model" in r.stderr, r.stderr
    assert not engine.exists()


def test_tensors_from_an_empty_folder_names_that_folder(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run_detrq("tensors", "--input-dir", empty, "--output-dir", tmp_path / "out", check=False)
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"detrq: error: {empty}: no usable image"), r.stderr


def test_a_refused_token_is_told_apart_from_a_missing_one(tmp_path, hub):
    env = dict(hub_env(hub.endpoint, tmp_path), HF_TOKEN="hf_not_a_token_this_hub_knows")
    r = run_detrq("pull", "--hf-repo", "acme/anything", env=env, check=False)
    assert r.returncode == 5, r.stderr
    assert "the token was refused, HTTP 401" in r.stderr and "set HF_TOKEN" not in r.stderr, r.stderr
    assert f"the token from HF_TOKEN is not valid for {hub.endpoint}" in r.stderr, r.stderr
    env.pop("HF_TOKEN")
    # A refused token from a file is named by the file's path.
    token_file = tmp_path / "my_token"
    token_file.write_text("hf_not_a_token_this_hub_knows_either\n")
    r = run_detrq("pull", "--hf-repo", "acme/anything", env=dict(env, HF_TOKEN_PATH=str(token_file)), check=False)
    assert r.returncode == 5, r.stderr
    assert f"the token from {token_file} is not valid for {hub.endpoint}" in r.stderr, r.stderr
    r = run_detrq("publish", "--hf-repo", "acme/anything", "--file", MODEL, env=env, check=False)
    assert r.returncode == 5, r.stderr
    assert "no token was sent" in r.stderr and "set HF_TOKEN" in r.stderr, r.stderr
