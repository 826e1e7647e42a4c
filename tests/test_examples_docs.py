"""Every example in README.md and docs/*.md runs as written.

Each file's fenced blocks run in order, as a reader would paste them, in a
scratch folder that looks like a fresh clone's root (the repository's
top-level entries linked in, so ``tests/data/...`` and ``scripts/...``
resolve): ```python blocks in one namespace per file, ```sh/```bash
blocks line by line in a shell where ``rnnkit``, ``python`` and
``torchrun`` are this interpreter's. Blocks in any other language
(```text for output listings and pseudo-code, ```json) are not run; a
block without a language is an error, so a command cannot hide in one.

The fast test runs each file's Python blocks alone; the slow one runs the
whole file, shell commands included (they train, on tiny settings).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SHELL = ("sh", "bash", "shell")
# Shell commands shown but not run here, each with the reason.
NOT_RUN = {
    "make demo": "builds .venv/; timed from a fresh clone by hand (README), and `rnnkit demo --quick` is tested",
    "make test": "is this test suite",
    "source .venv/bin/activate": "needs the .venv/ of `make demo`; here bin/ puts this interpreter's rnnkit on PATH",
    "python3 -m venv /tmp/kerasenv": "installs Keras from a package index (network)",
    "KERAS_BACKEND=torch /tmp/kerasenv/bin/python": "needs the Keras venv of the line before",
}

_FENCE = re.compile(r"^```(\S*)\s*$")


def blocks(path: Path) -> list[tuple[str, int, str]]:
    """``(language, first line number, text)`` of each fenced block, in order; a block without a language
    is an AssertionError."""
    found, lang, start, lines = [], None, 0, []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        m = _FENCE.match(line)
        if lang is None and m:
            lang, start, lines = m.group(1), number + 1, []
            if not lang:
                raise AssertionError(f"{path.name}:{number}: a ``` block without a language; mark it python, sh, "
                                     "or text (not run)")
        elif lang is not None and line.startswith("```"):
            found.append((lang, start, "\n".join(lines) + "\n"))
            lang = None
        elif lang is not None:
            lines.append(line)
    assert lang is None, f"{path.name}: a block opened at line {start - 1} is never closed"
    return found


def commands(text: str) -> list[str]:
    """The commands of a shell block: one a line (``\\`` continues it), blank lines and comments skipped."""
    out, pending = [], ""
    for line in text.splitlines():
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        if pending.strip() and not pending.lstrip().startswith("#"):
            out.append(pending.strip())
        pending = ""
    return out


@pytest.fixture
def scratch_clone(tmp_path, monkeypatch):
    """A folder whose top-level entries are the repository's (linked), with a bin/ of this interpreter's
    ``rnnkit``, ``python`` and ``torchrun``; the current directory for the test."""
    work = tmp_path / "clone"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv", "runs", "build") and not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, target in (("rnnkit", "-m rnnkit"), ("python", ""), ("python3", ""),
                         ("torchrun", "-m torch.distributed.run")):
        (bin_dir / name).write_text(f'#!/bin/sh\nexec "{sys.executable}" {target} "$@"\n')
        (bin_dir / name).chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(work)
    return work


def run_python(path: Path, start: int, text: str, namespace: dict) -> None:
    # Leading newlines put the block's lines at their line numbers in the file, for tracebacks.
    exec(compile("\n" * (start - 1) + text, str(path), "exec"), namespace)


def run_shell(path: Path, start: int, text: str) -> None:
    for command in commands(text):
        if any(command.startswith(prefix) for prefix in NOT_RUN):
            continue
        proc = subprocess.run(["bash", "-c", f"set -eo pipefail; {command}"], capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, (f"{path.name} (block at line {start}): `{command}` exited {proc.returncode}\n"
                                      f"{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def has_shell(path: Path) -> bool:
    return re.search(r"^```(" + "|".join(SHELL) + r")\s*$", path.read_text(encoding="utf-8"), re.M) is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_block_has_a_language(path):
    assert {lang for lang, _, _ in blocks(path)} - {""}


def test_the_harness_reads_blocks_and_commands(tmp_path):
    doc = tmp_path / "doc.md"
    doc.write_text("x\n```python\na = 1\n```\n```sh\nrnnkit a \\\n  --b\n# c\n\nmake demo\n```\n")
    assert blocks(doc) == [("python", 3, "a = 1\n"), ("sh", 6, "rnnkit a \\\n  --b\n# c\n\nmake demo\n")]
    assert commands(blocks(doc)[1][2]) == ["rnnkit a   --b", "make demo"]
    doc.write_text("```\nrnnkit train\n```\n")
    with pytest.raises(AssertionError, match="doc.md:1: a ``` block without a language"):
        blocks(doc)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_python_blocks_run_in_order(path, scratch_clone):
    namespace = {"__name__": "__main__"}
    for lang, start, text in blocks(path):
        if lang == "python":
            run_python(path, start, text, namespace)


@pytest.mark.slow
@pytest.mark.parametrize("path", [p for p in FILES if has_shell(p)], ids=lambda p: p.name)
def test_whole_file_runs_in_order_with_its_shell_commands(path, scratch_clone):
    namespace = {"__name__": "__main__"}
    for lang, start, text in blocks(path):
        if lang == "python":
            run_python(path, start, text, namespace)
        elif lang in SHELL:
            run_shell(path, start, text)
