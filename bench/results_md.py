"""Writes one benchmark's section of bench/RESULTS.md: the section under `heading` (up to the next `## `) is
replaced, or appended when absent; the file is replaced atomically."""
import os


def replace_section(path, heading, body):
    text = open(path).read() if os.path.exists(path) else "# Benchmark results\n"
    section = heading + "\n\n" + (body if body.endswith("\n") else body + "\n")
    if heading in text:
        start = text.index(heading)
        end = text.find("\n## ", start + len(heading))
        text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)
