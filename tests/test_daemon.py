"""`byref serve`: the store daemon, run as an admin would, used from Python over real QUIC."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import byref
from byref import _native

from .conftest import resolve_elsewhere, run_python
from .servers import QuicDaemon


def test_serve_prints_the_url_and_status_counts_what_it_holds(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path)
    try:
        store = byref.Store(daemon.url)
        proxy = store.proxy(np.arange(1_000_000, dtype=np.float64))
        assert resolve_elsewhere(proxy, "float(x.sum())") == str(float(sum(range(1_000_000))))
        status = subprocess.run(
            [sys.executable, "-m", "byref", "status", daemon.url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert 'byref_objects{tier="memory"} 1' in status
        assert 'byref_requests_total{op="get"} 1' in status
        assert 'byref_hits_total{tier="memory"} 1' in status
    finally:
        assert daemon.stop() == 0


def test_a_restart_keeps_objects_and_url(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path, "--memory", "1MiB")
    small, large = {"small": 1}, np.ones(1 << 18)  # the second spills to disk
    keys = [byref.Store(daemon.url).put(v) for v in (small, large)]
    url = daemon.url
    assert daemon.stop() == 0  # graceful: the memory tier goes to disk
    daemon.start()
    try:
        assert daemon.url == url
        store = byref.Store(daemon.url)
        assert store.get(keys[0]) == small
        assert np.array_equal(store.get(keys[1]), large)
    finally:
        daemon.stop()


def test_a_wrong_token_raises_authentication_error(quic_daemon: QuicDaemon) -> None:
    code = f"""
import byref
try:
    byref.Store({quic_daemon.url!r}).put(1)
except byref.AuthenticationError as e:
    print("refused:", e)
"""
    env = {**os.environ, "BYREF_TOKEN": "00" * 32}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("refused:") and "wrong token" in out


def test_a_full_daemon_raises_store_full_and_keeps_what_it_has(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path, "--memory", "1MiB", "--disk", "1MiB")
    try:
        store = byref.Store(daemon.url)
        kept = store.put(np.ones(100_000))  # 800 kB: memory
        with pytest.raises(byref.StoreFull):
            store.put(np.zeros(300_000))  # 2.4 MB: fits neither tier
        assert store.exists(kept)
    finally:
        daemon.stop()


def test_a_stopped_daemon_gives_a_backend_error_naming_it(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path)
    url = daemon.url
    proxy = pickle.dumps(byref.Store(url).proxy(np.ones(10)))
    daemon.stop()
    out = run_python(
        """
import pickle, sys, byref
p = pickle.loads(sys.stdin.buffer.read())
try:
    p + 1
except byref.BackendError as e:
    print(type(e).__name__, e)
""",
        stdin=proxy,
    ).decode()
    assert out.startswith("BackendError") and url.split("?")[0] in out


def test_a_quic_url_without_fingerprint_is_a_config_error() -> None:
    with pytest.raises(byref.ConfigError):
        _native.status("quic://127.0.0.1:1")
