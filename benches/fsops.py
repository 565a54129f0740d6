"""Filesystem operations of a piece of Python code under one directory, counted with strace.

On Lustre and GPFS every operation that changes a directory — a file created, renamed,
linked or removed, a directory made or removed — is a round trip to a metadata server that
the whole machine shares. Those are the *metadata operations* counted here. Opens of
existing files, stats and directory listings are counted apart: they cost a round trip too
unless the client caches them.

Used by ``benches/roundtrip.py`` and ``tests/test_metadata_ops.py``.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# System calls that change a directory, by name; open and openat count when they create.
CHANGES = {
    "creat", "link", "linkat", "mkdir", "mkdirat", "rename", "renameat", "renameat2",
    "rmdir", "symlink", "symlinkat", "unlink", "unlinkat",
}  # fmt: skip
STATS = {"stat", "lstat", "newfstatat", "statx", "access", "faccessat", "faccessat2"}
# Marks the start and the end of what is counted: a lookup of a path nothing else uses.
START, END = "/byref-fsops-start", "/byref-fsops-end"

# One system call, with the first path argument: `123 openat(AT_FDCWD, "/p", O_RDONLY) = 3`.
_CALL = re.compile(r'^\d+\s+(\w+)\((?:AT_FDCWD, |\d+, )?"([^"]*)"(.*)$')

CHILD = """
import os, sys
{setup}
def once():
{body}
os.access({start!r}, os.F_OK)
for _ in range({n}):
    once()
os.access({end!r}, os.F_OK)
"""


class Unavailable(Exception):
    """strace is missing, or may not trace here (no ptrace in this container)."""


def available() -> str | None:
    """Why counting cannot work here, or None."""
    if shutil.which("strace") is None:
        return "strace is not installed"
    probe = subprocess.run(
        ["strace", "-f", "-e", "trace=access", sys.executable, "-c", "pass"],
        capture_output=True,
        text=True,
    )
    return None if probe.returncode == 0 else f"strace cannot trace here: {probe.stderr[-200:]}"


def count(body: str, under: Path, n: int, setup: str = "") -> dict[str, float]:
    """System calls per run of ``body`` (indented code; ``setup`` runs first, uncounted) on
    paths under ``under``: ``changes`` (metadata operations), ``opens`` (of existing files),
    ``listings`` (directories opened to read) and ``stats``; each a mean over ``n`` runs."""
    why = available()
    if why:
        raise Unavailable(why)
    code = CHILD.format(
        setup=setup,
        body="\n".join("    " + line for line in body.strip().splitlines()),
        start=START,
        end=END,
        n=n,
    )
    with tempfile.NamedTemporaryFile(suffix=".strace") as log:
        subprocess.run(
            ["strace", "-f", "-qq", "-e", "trace=%file,%desc", "-o", log.name,
             sys.executable, "-c", code],
            check=True,
            capture_output=True,
        )  # fmt: skip
        lines = Path(log.name).read_text().splitlines()
    totals = dict.fromkeys(("changes", "opens", "listings", "stats"), 0)
    counting = False
    prefix = str(under.resolve())
    for line in lines:
        match = _CALL.match(line)
        if not match:
            continue
        name, path, rest = match.groups()
        if path == START:
            counting = True
        elif path == END:
            break
        elif counting and path.startswith(prefix):
            kind = _kind(name, rest)
            if kind:
                totals[kind] += 1
    return {kind: total / n for kind, total in totals.items()}


def _kind(name: str, rest: str) -> str | None:
    if name in CHANGES:
        return "changes"
    if name in ("open", "openat"):
        if "O_CREAT" in rest:
            return "changes"
        return "listings" if "O_DIRECTORY" in rest else "opens"
    return "stats" if name in STATS else None
