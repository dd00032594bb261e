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


def readme_command_table():
    readme = open(os.path.join(os.environ["DETRQ_SOURCE_DIR"], "README.md")).read()
    section = readme[readme.index("\n## Commands\n"):]
    section = section[:section.index("\n## ", 1)]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[2]
    return rows


def test_the_readmes_command_table_matches_every_commands_help():
    top = run("--help").stdout
    names = re.findall(r"^\s{2}([a-z][a-z-]+)\s", top[top.index("Subcommands:"):], re.M)
    rows = readme_command_table()
    assert sorted(rows) == sorted(names), (sorted(rows), sorted(names))
    for name in names:
        help_text = run(name, "--help").stdout
        listed = set(re.findall(r"^\s+(?:-\w,)?(--[a-z][a-z0-9-]*)", help_text, re.M))
        for option in re.findall(r"`(--[a-z][a-z0-9-]*)`", rows[name]):
            assert option in listed, (name, option, sorted(listed))
        if "MODEL" in rows[name]:
            assert re.search(r"^Positionals:\n\s+model TEXT REQUIRED\s+ONNX model or engine file$", help_text, re.M), help_text
        assert "Every command also takes, before or after its name: --json" in help_text, name
    # The global options the footer names work after the command's name too.
    r = run("inspect", "--json", os.path.join(os.environ["DETRQ_SOURCE_DIR"], "tests", "data", "rfdetr_tiny.onnx"))
    assert r.returncode == 0 and r.stdout.lstrip().startswith("{"), r.stderr
