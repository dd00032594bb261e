"""The detrq tool's help, version and usage errors, as a user sees them."""
import os
import re
import subprocess

DETRQ = os.environ["DETRQ_BIN"]


def run(*args):
    return subprocess.run([DETRQ, *args], capture_output=True, text=True, timeout=60)


def test_version_prints_name_and_version():
    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.startswith("detrq ")
    assert r.stdout.strip().split()[1].count(".") == 2


def test_help_lists_exit_codes():
    r = run("--help")
    assert r.returncode == 0
    assert "Exit codes" in r.stdout


def test_unknown_command_is_a_usage_error():
    r = run("no-such-command")
    assert r.returncode == 2
    assert r.stderr


def test_every_subcommand_help_has_the_same_footer_and_no_default_noise():
    top = run("--help").stdout
    names = re.findall(r"^\s{2}([a-z][a-z-]+)\s", top[top.index("Subcommands:"):], re.M)
    assert {"prepare", "calibrate", "detect", "eval", "hub-server", "publish", "pull"} <= set(names), names
    for name in names:
        r = run(name, "--help")
        assert r.returncode == 0, name
        assert "Exit codes: 0 success, 1 the command did not achieve what was asked" in r.stdout, name
        assert "{false}" not in r.stdout and "{true}" not in r.stdout, (name, r.stdout)
    for name in ("pull", "publish", "prepare", "build-engine"):
        assert "Environment: HF_ENDPOINT, HF_TOKEN" in run(name, "--help").stdout, name


def test_a_missing_model_file_is_a_file_system_error_in_detrq_format(tmp_path):
    missing = str(tmp_path / "nonexistent.onnx")
    for args in (["inspect", missing], ["run", missing, "--output-dir", str(tmp_path / "o")],
                 ["calibrate", "--onnx", missing, "--images", str(tmp_path), "--cache", str(tmp_path / "c")]):
        r = run(*args)
        assert r.returncode == 6, (args, r.stderr)
        assert r.stderr.startswith(f"detrq: error: {missing}"), (args, r.stderr)
