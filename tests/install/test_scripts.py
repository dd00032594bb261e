"""The scripts a new user and CI run (scripts/*.sh, .ci/run). Under `set -o pipefail` a pipeline into a reader
that stops early (`head`, `grep -q`, `grep -m`) fails whenever the writer is still writing when the reader
exits: the writer dies of SIGPIPE and the script with exit 141, at random (scripts/demo.sh's
`ls data/shapes_val/*.jpg | head -n 1` did, in 1 of 5 runs). Such pipelines are refused here."""
import glob
import os
import re
import subprocess

import pytest

SOURCE = os.environ["DETRQ_SOURCE_DIR"]
SCRIPTS = sorted(glob.glob(os.path.join(SOURCE, "scripts", "*.sh"))) + [os.path.join(SOURCE, ".ci", "run")]
EARLY_READER = re.compile(r"\|\s*(head\b|grep\s+(-\w*[qm]\w*|--quiet|--max-count))")


def commands(path):
    """The script's lines without comments (a `#` at a word's start) and single-quoted text (double quotes
    stay: a command substitution inside them runs)."""
    for number, line in enumerate(open(path), 1):
        line = re.sub(r"'[^']*'", "''", line)
        yield number, re.sub(r"(^|\s)#.*", "", line)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: os.path.relpath(p, SOURCE))
def test_no_pipeline_into_an_early_exiting_reader_under_pipefail(path):
    text = open(path).read()
    if "pipefail" not in text:
        return
    bad = [f"{os.path.relpath(path, SOURCE)}:{n}: {line.strip()}" for n, line in commands(path) if EARLY_READER.search(line)]
    assert not bad, "pipelines that can exit 141 under pipefail:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: os.path.relpath(p, SOURCE))
def test_scripts_parse_and_are_executable(path):
    assert os.access(path, os.X_OK), f"{path} is not executable"
    r = subprocess.run(["bash", "-n", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_the_check_itself_catches_the_demo_bug(tmp_path):
    """The pattern as scripts/demo.sh had it, on a folder big enough that `ls` is still writing when `head`
    exits: bash really does exit 141, and the check above really does flag it."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(20000):
        (images / f"{i:06d}.jpg").touch()
    script = tmp_path / "demo_before.sh"
    script.write_text(f'set -euo pipefail\nimage="$(ls {images}/*.jpg | head -n 1)"\necho "$image"\n')
    assert subprocess.run(["bash", str(script)], capture_output=True).returncode == 141
    assert any(EARLY_READER.search(line) for _, line in commands(script))
