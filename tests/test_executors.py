"""``byref.proxy_args`` on executors other than Parsl: real process pools, a real Dask
cluster, and Globus Compute's own serializer. Whatever a task does to its argument, the result
is what the executor gives without byref, and only a handle crosses."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import byref

N = 1 << 18  # 2 MiB of float64: above the default threshold


def write_into(x: np.ndarray) -> tuple[float, float]:
    x[0] = 42.0
    x[1:] *= 2
    return float(x[0]), float(x.sum())


def mutate_and_return(x: np.ndarray) -> np.ndarray:
    x += 1
    return x


def return_unchanged(x: Any) -> Any:
    return x


def write_through_one_alias(pair: list[Any], again: Any, key: Any = None) -> tuple:
    pair[0][0] = -7.0
    return pair[0] is pair[1], pair[1] is again, again is key, float(key[0])


def proxied_kinds(*args: Any, **kwargs: Any) -> list[bool]:
    """Which arguments arrived as proxies (checked without resolving them)."""
    return [byref.is_proxy(a) for a in (*args, *kwargs.values())]


def released(store: byref.Store, key: str) -> bool:
    """Whether ``key`` is gone within 5 s: a future's done callbacks run just after
    ``result()`` returns."""
    deadline = time.monotonic() + 5
    while store.exists(key):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(params=["fork", "spawn"])
def pool(request: pytest.FixtureRequest) -> Iterator[ProcessPoolExecutor]:
    context = multiprocessing.get_context(request.param)
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        yield executor


def test_process_pool_tasks_see_their_values(pool: ProcessPoolExecutor, file_store) -> None:
    submit = byref.proxy_args(file_store)(pool.submit)
    x = np.arange(N, dtype=np.float64)
    small = np.arange(10.0)
    assert submit(proxied_kinds, x, small, y=b"z" * (8 * N)).result() == [True, False, True]
    assert submit(write_into, x).result() == (42.0, 42.0 + 2 * float(np.arange(1, N).sum()))
    assert x[0] == 0.0  # the task wrote into its own copy, as with plain pickling
    returned = submit(mutate_and_return, x).result()
    np.testing.assert_array_equal(returned, x + 1)
    np.testing.assert_array_equal(x, np.arange(N, dtype=np.float64))


def test_one_object_met_twice_is_stored_once_and_arrives_as_one(
    pool: ProcessPoolExecutor, file_store
) -> None:
    # Without byref, pickle keeps the four occurrences one object: so must the proxies.
    a = np.zeros(N)
    plain = pool.submit(write_through_one_alias, [a, a], a, key=a).result()
    submit = byref.proxy_args(file_store, release_on_completion=False)(pool.submit)
    assert submit(write_through_one_alias, [a, a], a, key=a).result() == plain
    assert plain == (True, True, True, -7.0)
    stored = [o for o in file_store.ls(kinds=False) if o.size >= a.nbytes]
    assert len(stored) == 1 and len(stored[0].holders) == 1, f"stored once, once: {stored}"
    assert float(a[0]) == 0.0


def test_process_pool_releases_inputs_on_completion(file_store) -> None:
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        submit = byref.proxy_args(file_store, release_on_completion=True)(pool.submit)
        x = np.ones(N)
        key = byref.key_of(x)
        assert submit(write_into, x).result()[0] == 42.0
        assert released(file_store, key)
        # A task that returns its argument untouched gets a handle that still resolves.
        y = np.full(N, 3.0)
        back = submit(return_unchanged, y).result()
        assert file_store.exists(byref.key_of(y))
        np.testing.assert_array_equal(back, y)


def test_keep_and_threshold_are_honoured(file_store) -> None:
    calls: list[tuple[Any, ...]] = []
    submit = byref.proxy_args(file_store, threshold=100, keep=(bytearray,))(
        lambda *a: calls.append(a)
    )
    submit(b"a" * 100, b"b" * 99, bytearray(1000))
    assert [byref.is_proxy(a) for a in calls[0]] == [True, False, False]


def test_the_default_threshold_is_the_stores(file_store, redis_server, shared_daemon) -> None:
    """Where proxying starts to win differs by store (a request to a server costs a round
    trip, and for QUIC a connection per worker): 256 KiB on a file store, 512 KiB on Redis,
    1 MiB on the daemon, as measured on the cluster set-up (benches/cluster.py)."""
    sizes = [300_000, 600_000, 1 << 20]
    for store, proxied in (
        (file_store, [True, True, True]),
        (byref.Store(redis_server.url), [False, True, True]),
        (byref.Store(shared_daemon.url), [False, False, True]),
    ):
        sent = byref.proxy_args(store)(lambda *a: a)(*(bytes(n) for n in sizes))
        assert [byref.is_proxy(a) for a in sent] == proxied, store.url
    assert byref.Store("memory://").proxy_threshold == byref.DEFAULT_THRESHOLD == 256 << 10


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def test_dask_tasks_see_their_values(dask_client: Any, file_store) -> None:
    submit = byref.proxy_args(file_store, release_on_completion=True)(dask_client.submit)
    x = np.arange(N, dtype=np.float64)
    assert submit(proxied_kinds, x, pure=False).result() == [True]
    assert submit(write_into, x, pure=False).result()[0] == 42.0
    assert x[0] == 0.0
    returned = submit(mutate_and_return, x, pure=False).result()
    np.testing.assert_array_equal(returned, np.arange(N, dtype=np.float64) + 1)
    # One task's result handed to the next, on the cluster.
    first = submit(mutate_and_return, x, pure=False)
    second = dask_client.submit(mutate_and_return, first, pure=False)
    np.testing.assert_array_equal(second.result(), np.arange(N, dtype=np.float64) + 2)
    first.result()
    assert released(file_store, byref.key_of(x))


def test_globus_compute_serializer_carries_handles(file_store, tmp_path: Path) -> None:
    # No Globus Compute service here: the submitting side packs a task as the SDK's Executor
    # does, and a fresh interpreter unpacks and runs it as an endpoint's worker does.
    serialize = pytest.importorskip("globus_compute_sdk.serialize")
    serializer = serialize.ComputeSerializer()

    def pack(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
        return serializer.pack_buffers(
            [serializer.serialize(fn), serializer.serialize(args), serializer.serialize(kwargs)]
        )

    x = np.arange(N, dtype=np.float64)
    packed = byref.proxy_args(file_store)(pack)(write_into, x)
    assert len(packed) < 4096, "the array travelled inline"
    worker = (
        "import sys; from globus_compute_sdk.serialize import ComputeSerializer\n"
        "fn, args, kwargs = ComputeSerializer().unpack_and_deserialize(sys.stdin.read())\n"
        "print(fn(*args, **kwargs))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", worker],
        input=packed,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        cwd=Path(__file__).parent.parent,
    )
    assert out.stdout.strip() == repr(write_into(x.copy()))
