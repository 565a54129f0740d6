"""Across processes: forked children work, and concurrent sharers never lose an object."""

from __future__ import annotations

import multiprocessing
import pickle
import subprocess
import sys

import numpy as np

import byref

from .servers import RedisServer


def _child_round_trip(url: str, wire: bytes) -> None:
    store = byref.Store(url)
    # Large enough to use the parallel hasher and the blocking write pool.
    big = np.arange(2_000_000, dtype=np.float64)
    assert np.array_equal(store.get(store.put(big)), big)
    assert pickle.loads(wire).sum() == 45


def finish(child: multiprocessing.Process, timeout: float, hung: str) -> None:
    """Waits for a forked child; a hang fails the test (and kills the child), never blocks it."""
    child.join(timeout=timeout)
    if child.is_alive():
        child.kill()
        raise AssertionError(hung)
    assert child.exitcode == 0


def test_forked_child_uses_the_store_after_the_parent_did(file_store: byref.Store) -> None:
    big = np.arange(2_000_000, dtype=np.float64)
    file_store.get(file_store.put(big))  # starts the runtime and the hashing threads here
    wire = pickle.dumps(file_store.proxy(np.arange(10)))
    ctx = multiprocessing.get_context("fork")
    child = ctx.Process(target=_child_round_trip, args=(file_store.url, wire))
    child.start()
    finish(child, 120, "forked child hung")


SHARER = """
import numpy as np, byref
store = byref.Store({url!r})
data = np.arange(300_000)
for _ in range(40):
    key = store.put(data)
    store.get(key)
    store.evict(key)
print("ok")
"""


def test_processes_sharing_one_object_never_delete_it_under_a_holder(
    file_store: byref.Store,
) -> None:
    data = np.arange(300_000)
    keeper = file_store.put(data)
    code = SHARER.format(url=file_store.url)
    sharers = [subprocess.Popen([sys.executable, "-c", code]) for _ in range(4)]
    for p in sharers:
        assert p.wait(timeout=300) == 0
    assert file_store.exists(keeper), "a concurrent evict deleted an object still referenced"
    assert np.array_equal(file_store.get(keeper), data)
    assert file_store.evict(keeper) is True
    assert not file_store.exists(keeper)


def _child_uses_redis(url: str, key: str) -> None:
    store = byref.Store(url)
    assert store.get(key).sum() == 45
    assert store.get(store.put(np.arange(5))).sum() == 10


def test_forked_child_reconnects_to_redis(redis_server: RedisServer) -> None:
    store = byref.Store(redis_server.url, prefix="fork:", timeout=5)
    key = store.put(np.arange(10))
    store.get(key)  # the parent's connection is live when the child is forked
    child = multiprocessing.get_context("fork").Process(
        target=_child_uses_redis, args=(store.url, key)
    )
    child.start()
    finish(child, 60, "forked child hung on the parent's connection")
