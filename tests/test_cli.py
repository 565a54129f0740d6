"""``byref put/get/stat/evict``: files in and out of stores, from the command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import byref


def cli(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "byref", *args], capture_output=True, timeout=300)


def ok(*args: str) -> bytes:
    done = cli(*args)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def test_files_round_trip_through_every_shared_store(store: byref.Store, tmp_path: Path) -> None:
    if store.url.startswith("memory://"):
        pytest.skip("a memory store lives in one process; the CLI runs in another")
    data = np.random.default_rng(5).bytes((20 << 20) + 3)
    source = tmp_path / "input.bin"
    source.write_bytes(data)
    key = ok("put", "--store", store.url, str(source)).decode().strip()
    # Stored as raw bytes: Python reads the same object.
    assert bytes(store.get(key)) == data

    out = tmp_path / "out" / "copy.bin"
    out.parent.mkdir()
    ok("get", "--store", store.url, key, "-o", str(out))
    assert out.read_bytes() == data
    assert ok("get", "--store", store.url, key) == data
    stat = ok("stat", "--store", store.url, key).decode()
    assert stat.startswith(key) and "raw bytes" in stat, stat

    assert "deleted" in ok("evict", "--store", store.url, key).decode()
    missing = cli("get", "--store", store.url, key, "-o", str(tmp_path / "gone.bin"))
    assert missing.returncode == 1
    assert "not found" in missing.stderr.decode(), missing.stderr.decode()
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.bin"]
    assert not (tmp_path / "gone.bin").exists()


def test_get_refuses_a_pickled_value_and_stat_describes_it(file_store: byref.Store) -> None:
    key = file_store.put({"a": np.arange(10)})
    done = cli("get", "--store", file_store.url, key)
    assert done.returncode == 1
    assert "pickled Python value" in done.stderr.decode(), done.stderr.decode()
    assert "pickle, 1 buffer(s)" in ok("stat", "--store", file_store.url, key).decode()


def test_a_corrupted_object_is_refused_and_leaves_no_file(
    file_store: byref.Store, tmp_path: Path
) -> None:
    source = tmp_path / "input.bin"
    source.write_bytes(bytes(range(256)) * 40_000)
    key = ok("put", "--store", file_store.url, str(source)).decode().strip()
    [stored] = (tmp_path).glob(f"objects/*/{key}*")
    os.chmod(stored, 0o644)
    with open(stored, "r+b") as f:
        f.seek(5_000_000)
        f.write(b"\xff\x00")
    out = tmp_path / "copy.bin"
    done = cli("get", "--store", file_store.url, key, "-o", str(out))
    assert done.returncode == 1
    assert "hash" in done.stderr.decode(), done.stderr.decode()
    assert not out.exists() and not list(tmp_path.glob(".copy.bin*"))


def test_missing_input_file_is_a_clear_error(file_store: byref.Store, tmp_path: Path) -> None:
    done = cli("put", "--store", file_store.url, str(tmp_path / "nope.bin"))
    assert done.returncode == 1
    assert "nope.bin" in done.stderr.decode(), done.stderr.decode()


def test_sizes_parse_by_the_daemons_rule() -> None:
    # One parser, in Rust, for `byref serve`, `byrefd` and peer:// URLs alike.
    from byref.cli import parse_size

    assert parse_size("8GiB") == 8 << 30 and parse_size("512MB") == 512_000_000
    assert parse_size("1000") == 1000 and parse_size("1.5k") == 1536
    done = cli("serve", "--memory", "8XB", "--dir", "/nonexistent")
    assert done.returncode == 2 and b"unknown size unit" in done.stderr
