"""The detrq tool's help, version and usage errors, as a user sees them."""
import os
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
