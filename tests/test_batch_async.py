"""Many objects in one call, and awaiting from asyncio, on every store: the same values and
errors as one at a time, and a proxy is fetched once however it is resolved."""

from __future__ import annotations

import asyncio
import multiprocessing
import pickle
from concurrent.futures import wait
from typing import Any

import numpy as np
import pytest

import byref


def values() -> list[Any]:
    return [
        b"x" * 1024,
        np.arange(1000, dtype=np.int32),
        {"nested": [1, 2, np.ones(300)]},
        b"x" * 1024,  # a duplicate: same key, counted twice
        "text",
    ]


def assert_same(got: list[Any], expected: list[Any]) -> None:
    assert len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert pickle.dumps(g) == pickle.dumps(e)


def test_many_round_trip_in_order(store: byref.Store) -> None:
    objs = values()
    keys = store.put_many(objs)
    assert keys == [byref.key_of(o) for o in objs]
    assert_same(store.get_many(keys), objs)
    assert_same(store.get_many(reversed(keys)), objs[::-1])
    # Two references to the duplicate: it survives one evict.
    assert not store.evict(keys[0])
    assert store.exists(keys[3])
    assert store.put_many([]) == [] and store.get_many([]) == []


def test_get_many_raises_for_a_missing_key(store: byref.Store) -> None:
    keys = store.put_many([b"a" * 100, b"b" * 100])
    missing = byref.key_of(b"never stored")
    with pytest.raises(byref.ObjectNotFound):
        store.get_many([keys[0], missing, keys[1]])
    with pytest.raises(byref.HandleError):
        store.get_many(["not a key"])


def test_proxy_many_each_released_on_first_resolve(store: byref.Store) -> None:
    proxies = store.proxy_many([np.full(100, i) for i in range(20)], evict=True, hold=False)
    wire = [pickle.loads(pickle.dumps(p)) for p in proxies]
    assert [int(p[0]) for p in wire] == list(range(20))
    assert not any(store.exists(byref.handle_of(p).key) for p in proxies)


def test_await_put_get_proxy(store: byref.Store) -> None:
    async def main() -> None:
        objs = values()
        keys = await asyncio.gather(*(store.aput(o) for o in objs))
        assert keys == [byref.key_of(o) for o in objs]
        assert_same(await asyncio.gather(*(store.aget(k) for k in keys)), objs)
        proxy = await store.aproxy(np.arange(50), evict=True, hold=False)
        remote = pickle.loads(pickle.dumps(proxy))
        assert (await byref.aresolve(remote)).sum() == 1225
        assert byref.is_resolved(remote) and int(remote[-1]) == 49
        with pytest.raises(byref.ObjectNotFound):
            await store.aget(byref.key_of(b"never stored"))
        with pytest.raises(byref.ObjectNotFound):  # released by the first resolve
            await byref.aresolve(pickle.loads(pickle.dumps(proxy)))

    asyncio.run(main())


def test_aresolve_does_not_block_the_event_loop(store: byref.Store) -> None:
    array = np.random.default_rng(1).random(8 << 20)  # 64 MB
    proxy = pickle.loads(pickle.dumps(store.proxy(array, hold=False)))

    async def main() -> int:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        before = ticks
        value = await byref.aresolve(proxy)
        ticker.cancel()
        np.testing.assert_array_equal(value, array)
        return ticks - before

    assert asyncio.run(main()) > 0


def _resolve_in_child(wire: bytes, queue: Any) -> None:
    queue.put(float(asyncio.run(byref.aresolve(pickle.loads(wire))).sum()))


def test_aresolve_in_a_forked_child(file_store: byref.Store) -> None:
    # A fork has none of the parent's runtime threads: awaiting there must not hang.
    wire = pickle.dumps(file_store.proxy(np.ones(1000), hold=False))
    asyncio.run(byref.aresolve(pickle.loads(wire)))  # the parent's runtime is up
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_resolve_in_child, args=(wire, queue))
    child.start()
    assert queue.get(timeout=60) == 1000.0
    child.join(60)
    assert child.exitcode == 0


def test_prefetch_fetches_each_proxy_once(store: byref.Store) -> None:
    arrays = [np.full(10_000, i, dtype=np.int64) for i in range(16)]
    # evict=True: a second fetch of any of them would raise ObjectNotFound.
    sent = store.proxy_many(arrays, evict=True, hold=False)
    proxies = [pickle.loads(pickle.dumps(p)) for p in sent]
    futures = byref.prefetch(*proxies, "not a proxy")
    assert len(futures) == 16
    # Touch half at once, racing their prefetch; then wait for the rest.
    assert [int(p[0]) for p in proxies[:8]] == list(range(8))
    wait(futures, timeout=60)
    assert all(byref.is_resolved(p) for p in proxies)
    assert [int(p.sum()) for p in proxies] == [i * 10_000 for i in range(16)]
    assert byref.prefetch(*proxies) == []


def test_prefetch_failure_raises_on_touch(file_store: byref.Store) -> None:
    proxy = pickle.loads(pickle.dumps(file_store.proxy(np.ones(10), hold=False)))
    file_store.evict(byref.handle_of(proxy).key)
    (future,) = byref.prefetch(proxy)
    assert isinstance(future.exception(timeout=60), byref.ObjectNotFound)
    with pytest.raises(byref.ObjectNotFound):
        proxy.sum()
