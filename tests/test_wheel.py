"""The wheel users install (``make wheel``), in a clean venv: it installs, runs the README's
quickstart and ``byref serve --help``, and needs no glibc newer than its tag says."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

#: The README's quickstart, smaller, with a check of what the worker sees.
QUICKSTART = """
import pickle, numpy as np, byref
store = byref.Store()
array = np.random.random(5_000_000)
proxy = store.proxy(array, evict=True)
wire = pickle.dumps(proxy)
assert len(wire) < 300, len(wire)
x = pickle.loads(wire)
assert float(x.sum()) == float(array.sum())
print("quickstart ok", len(wire))
"""


def section_names(elf: bytes) -> list[str]:
    """The section names of a 64-bit little-endian ELF file."""
    (shoff,) = struct.unpack_from("<Q", elf, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", elf, 0x3A)
    headers = [elf[shoff + i * shentsize : shoff + (i + 1) * shentsize] for i in range(shnum)]
    strtab_offset = struct.unpack_from("<Q", headers[shstrndx], 0x18)[0]
    names = []
    for header in headers:
        start = strtab_offset + struct.unpack_from("<I", header, 0)[0]
        names.append(elf[start : elf.index(b"\0", start)].decode())
    return names


@pytest.fixture(scope="module")
def wheel() -> Path:
    where = os.environ.get("BYREF_WHEEL_DIR")
    if not where:
        pytest.skip("no wheel: run through `make test`, or `make wheel` and set BYREF_WHEEL_DIR")
    (found,) = Path(where).glob("byref-*.whl")
    return found


def test_the_wheel_is_tagged_for_glibc_2_28_and_links_no_newer(wheel: Path) -> None:
    assert wheel.name.endswith("-cp311-abi3-manylinux_2_28_x86_64.whl"), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        native = archive.read("byref/_native.abi3.so")
    versions = {int(m) for m in re.findall(rb"GLIBC_2\.(\d+)", native)}
    assert versions and max(versions) <= 28, sorted(versions)
    debug = [name for name in section_names(native) if name.startswith(".debug")]
    assert debug == [], f"the extension carries debug info: {debug}"


def test_the_wheel_installs_and_runs_in_a_clean_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", str(wheel), "numpy"],
        check=True,
        timeout=600,
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"), "PYTHONPATH": ""}
    # From outside the checkout: the installed package, not python/byref.
    run = {"capture_output": True, "text": True, "timeout": 120, "cwd": tmp_path, "env": env}
    done = subprocess.run([python, "-c", QUICKSTART], **run)
    assert done.returncode == 0, done.stderr
    assert "quickstart ok" in done.stdout
    where = subprocess.run([python, "-c", "import byref; print(byref.__file__)"], **run)
    assert str(venv) in where.stdout
    serve = subprocess.run([venv / "bin" / "byref", "serve", "--help"], **run)
    assert serve.returncode == 0 and "--listen" in serve.stdout, serve.stderr
