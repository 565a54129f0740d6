"""Fixtures: a fresh store of every local kind, and a fresh Python process to resolve in."""

from __future__ import annotations

import pickle
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import byref


@pytest.fixture(params=["memory", "file"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> byref.Store:
    """A new, empty store of each kind."""
    if request.param == "memory":
        return byref.Store(f"memory://test-{uuid.uuid4().hex}")
    return byref.Store(tmp_path.as_uri())


@pytest.fixture
def file_store(tmp_path: Path) -> byref.Store:
    """A new, empty file store (shared between processes)."""
    return byref.Store(tmp_path.as_uri())


def run_python(code: str, *, stdin: bytes = b"", timeout: float = 120) -> bytes:
    """Runs `code` in a fresh interpreter (no state shared with this one); returns stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def resolve_elsewhere(obj: object, expr: str = "repr(x)") -> str:
    """Pickles `obj`, unpickles it in a fresh process, and returns `expr` evaluated there."""
    code = (
        "import pickle, sys\n"
        "x = pickle.loads(sys.stdin.buffer.read())\n"
        f"sys.stdout.write(str({expr}))\n"
    )
    return run_python(code, stdin=pickle.dumps(obj)).decode()
