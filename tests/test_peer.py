"""Peer-to-peer: the producing process serves its own objects and workers fetch from it over
QUIC, with no daemon; when the producer is gone, resolving names it."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import byref

from .conftest import run_python
from .test_processes import finish

PRODUCER = """
import pickle, sys, numpy as np, byref
store = byref.Store("peer://127.0.0.1?connect_timeout=2")
proxies = [store.proxy(np.full(1_000_000, float(i))) for i in (1, 2)]
for p in proxies:
    sys.stdout.write(pickle.dumps(p).hex() + "\\n")
sys.stdout.flush()
sys.stdin.read()  # serve until told to stop
"""

RESOLVE = """
import pickle, sys, byref
try:
    print(float(pickle.loads(sys.stdin.buffer.read()).sum()))
except byref.BackendError as e:
    print("BackendError:", e)
"""


@pytest.fixture
def producer(tmp_path: Path):
    """A producer process serving two 8 MB arrays; its spill directory under `tmp_path`."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process = subprocess.Popen(
        [sys.executable, "-c", PRODUCER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    wires = [bytes.fromhex(process.stdout.readline().decode()) for _ in range(2)]
    yield process, wires
    process.kill()
    process.wait()


def test_workers_fetch_from_the_producer_and_are_told_when_it_is_gone(
    producer, tmp_path: Path
) -> None:
    process, (first, second) = producer
    assert len(first) < 300, len(first)
    # A fresh process, and this one (whose connection then stays open), fetch from the peer.
    assert run_python(RESOLVE, stdin=first).decode().strip() == "1000000.0"
    assert float(pickle.loads(first).sum()) == 1_000_000.0
    assert list(tmp_path.glob("byref-peer-*"))

    process.stdin.close()
    assert process.wait(timeout=30) == 0
    # Its spill directory went with it.
    assert not list(tmp_path.glob("byref-peer-*"))
    named = f"peer {process.pid}@"
    # A fresh worker gets no answer; the connected one was told the peer closed.
    message = run_python(RESOLVE, stdin=second).decode()
    assert message.startswith("BackendError:") and named in message and "gone" in message, message
    with pytest.raises(byref.BackendError, match=f"{named}.*gone"):
        pickle.loads(second).sum()


def _child_sums(wire: bytes) -> None:
    assert float(pickle.loads(wire).sum()) == 3.0 * 1000


def test_a_forked_child_fetches_from_its_parent_peer(tmp_path: Path) -> None:
    store = byref.Store("peer://127.0.0.1", dir=str(tmp_path))
    proxy = store.proxy(np.full(1000, 3.0))
    assert byref.handle_of(proxy).url.startswith("quic://127.0.0.1:")
    # The child's store registry starts empty, so it dials the parent like any worker.
    child = multiprocessing.get_context("fork").Process(
        target=_child_sums, args=(pickle.dumps(proxy),)
    )
    child.start()
    finish(child, 60, "forked child hung fetching from its parent")
