"""No tracked file names a folder of one machine: published results, docs and code are read on other machines.

A path below one of :data:`MACHINE_ROOTS` (a scratch folder, a home folder, the project's own work folders) means
nothing elsewhere and tells a stranger about the machine that wrote it; a run log or result copied into the
repository as written is how one gets in (a GPU machine's output folder was once committed at the root). Published
records are portable: their paths are relative to the benchmark folder or the project root.

Exempt, and only these: the Python files under ``tests/``, whose fixtures may spell such a path to check that it is
refused or made relative (today none does; their data comes from ``tmp_path``). Never exempt: ``docs/``,
``results/``, ``cfg/``, ``scripts/``, the package, the README, or a data file under ``tests/``. A path is counted
where it starts: after a space, quote, ``=``, bracket or the start of a line, not inside a URL or a relative path
(``x.org/home/``, ``results/tmp/``), nor after ``~``.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from helpers import REPO

MACHINE_ROOTS = ("tmp", "root", "home", "work", "Users")
MACHINE_PATH = re.compile(rb"(?<![\w.~/-])/+(?:" + "|".join(MACHINE_ROOTS).encode() + rb")/")


def exempt(path: str) -> bool:
    return path.startswith("tests/") and path.endswith(".py")


def machine_paths(files: list[str]) -> list[str]:
    """``file:line: text`` of every absolute machine path in the text files among ``files`` (relative to REPO)."""
    found = []
    for name in files:
        path = REPO / name
        if exempt(name) or not path.is_file():
            continue
        data = path.read_bytes()
        if b"\0" in data:  # binary (images, archives): no text to read
            continue
        for number, line in enumerate(data.splitlines(), 1):
            if MACHINE_PATH.search(line):
                found.append(f"{name}:{number}: {line.decode('utf-8', 'replace').strip()[:160]}")
    return found


def test_the_pattern_finds_machine_paths_and_nothing_else():
    hits = [b"out=/tmp/h200/val", b'"/home/alice/data.yaml"', b"benchmark: report /work/main/runs/x",
            b"cd /Users/bob/boxloss", b"(/root/out/wave-a.log)", b"file:///tmp/x"]
    misses = [b"https://example.org/home/index.html", b"results/tmp/x.json", b"~/work/boxloss", b"../work/x",
              b"/tmpfs/x", b"/usr/local/bin/x", b"runs/h200/val/ciou-s0-test"]
    assert all(MACHINE_PATH.search(line) for line in hits)
    assert not any(MACHINE_PATH.search(line) for line in misses)
    assert exempt("tests/test_x.py") and not exempt("tests/data/x.json") and not exempt("docs/x.md")


def test_no_tracked_file_holds_an_absolute_machine_path():
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout (an installed copy): no list of tracked files to read")
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True, timeout=60)
    files = [name for name in listed.stdout.decode().split("\0") if name]
    assert len(files) > 100  # the repository's own list, not an empty one
    found = machine_paths(files)
    assert not found, "absolute machine paths in tracked files:\n" + "\n".join(found[:20])
