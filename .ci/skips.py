#!/usr/bin/env python3
"""Reports the tests that skipped in a build's last CTest run, with their reasons, and fails when one that
must run in CI skipped (tests/must_run_in_ci.txt: the tests that must run, and those excused; an instruction-set
path's test may skip where /proc/cpuinfo confirms the CPU lacks what the path needs). CTest counts a GoogleTest skip as "not run" but a pytest
skip as passed (pytest exits 0), so both are read from their JUnit files: BUILD/test-results/ctest.xml
(every CTest entry; a gtest's reason is the line after "Skipped" in its output) and
BUILD/test-results/pytest/NAME.xml (one per pytest entry, with each test function's skip message).
Test ids: a gtest's "Suite.Name"; a pytest function's "tests/dir/test_file.py::function[param]".
  .ci/skips.py BUILD_DIR [MUST_RUN_FILE]"""
import fnmatch
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path


def gtest_skip_reason(output):
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.endswith(": Skipped"):
            return " ".join(l.strip() for l in lines[i + 1:i + 3] if l.strip() and not l.startswith("[")) or line
    return "skipped"


def pytest_id(case):
    path = case.get("classname", "").replace(".", "/")
    return f"{path}.py::{case.get('name')}"


def collect(build):
    """(every test id that CTest or pytest saw, {skipped test id: reason})."""
    seen, skipped = set(), {}
    ctest = ET.parse(build / "test-results" / "ctest.xml").getroot()
    for case in ctest.iter("testcase"):
        name = case.get("name")
        xml = build / "test-results" / "pytest" / f"{name}.xml"
        if xml.exists():  # a pytest file run by CTest: its functions, from pytest's own report
            for test in ET.parse(xml).getroot().iter("testcase"):
                tid = pytest_id(test)
                seen.add(tid)
                skip = test.find("skipped")
                if skip is not None:
                    skipped[tid] = skip.get("message") or (skip.text or "").strip() or "skipped"
            continue
        seen.add(name)
        if case.get("status") == "notrun":
            skipped[name] = gtest_skip_reason(case.findtext("system-out") or "")
    return seen, skipped


def must_run(path):
    """(patterns of tests that must run, patterns of tests excused from that), from the list's lines:
    "PATTERN" or "!PATTERN  # why it may skip"."""
    required, excused = [], []
    for line in path.read_text().splitlines():
        entry = line.split("#", 1)[0].strip()
        if entry.startswith("!"):
            excused.append(entry[1:].strip())
        elif entry:
            required.append(entry)
    return required, excused


# detrq's CPU feature names (src/runtime/cpu_target.cpp) as /proc/cpuinfo spells them.
CPUINFO_FLAG = {"sse4.2": "sse4_2", "avx512vnni": "avx512_vnni", "avxvnni": "avx_vnni", "avx512bf16": "avx512_bf16",
                "amx-tile": "amx_tile", "amx-int8": "amx_int8", "amx-bf16": "amx_bf16"}
ISA_SKIP = re.compile(r"this CPU lacks ([a-z0-9.\-]+(?:, [a-z0-9.\-]+)*), which the \S+ path needs")


def host_flags(cpuinfo=Path("/proc/cpuinfo")):
    for line in cpuinfo.read_text().splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def truly_lacking(reason, flags):
    """True when the skip says an ISA path needs CPU features this CPU lacks and /proc/cpuinfo agrees that
    at least one of them is absent: the one skip every test may take, checked here rather than trusted."""
    m = ISA_SKIP.search(reason)
    if not m:
        return False
    return any(CPUINFO_FLAG.get(f, f) not in flags for f in m.group(1).split(", "))


def check(seen, skipped, required, excused, list_name, flags=frozenset()):
    """Errors: a skipped test that must run; a must-run pattern that matches no test of a kind that ran
    (pytest ids hold "::"; the asan run has gtests only). An exception that matches nothing is only noted."""
    kinds = {"::" in t for t in seen}
    for p in excused:
        if ("::" in p) in kinds and not any(fnmatch.fnmatchcase(t, p) for t in seen):
            print(f"note: the exception {p} matches no test that ran (filtered out, or renamed: {list_name})")
    errors = [f"{p}: matches no test (renamed? update {list_name})" for p in required
              if ("::" in p) in kinds and not any(fnmatch.fnmatchcase(t, p) for t in seen)]
    for tid in sorted(skipped):
        if truly_lacking(skipped[tid], flags):
            continue  # an instruction-set path this CPU cannot run (checked against /proc/cpuinfo)
        if any(fnmatch.fnmatchcase(tid, p) for p in required) and not any(fnmatch.fnmatchcase(tid, p) for p in excused):
            errors.append(f"{tid}: must run in CI but skipped ({skipped[tid]})")
    return errors


def main():
    build = Path(sys.argv[1])
    must_file = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parent.parent / "tests" / "must_run_in_ci.txt"
    seen, skipped = collect(build)
    gtests = sum(1 for t in skipped if "::" not in t)
    print(f"skipped: {len(skipped)} of {len(seen)} tests in {build} ({gtests} gtest, {len(skipped) - gtests} pytest)")
    for tid, reason in sorted(skipped.items()):
        print(f"  SKIPPED {tid}: {reason}")
    required, excused = must_run(must_file)
    errors = check(seen, skipped, required, excused, must_file.name, host_flags())
    for e in errors:
        print(f"FAILED {e}")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
