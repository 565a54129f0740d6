"""Users' task patterns on a real HTEX, with the decorator and the plugin, with and without
evict: whatever a task does to its argument, the result is what plain Parsl would give."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

import byref.parsl  # noqa: E402

N = 1 << 18  # 2 MiB of float64: proxied (threshold 1 MiB) and returned by reference


@parsl.python_app
def mutate_and_return(x):
    x += 1
    return x


@parsl.python_app
def copy_inside(x):
    mine = copy.copy(x)
    mine += 1
    return float(mine[0]), float(x[0]), float(copy.deepcopy(x)[0])


@parsl.python_app
def write_into(x):
    x[0] = 42.0
    x[1:] *= 2
    x.sort()
    return float(x[-1]), float(x.sum())


@parsl.python_app
def return_unchanged(x):
    return x


@parsl.python_app
def use_and_return(x):
    assert float(x.sum()) > 0
    return x


@parsl.python_app
def total(x):
    return float(np.asarray(x).sum())


@parsl.python_app
def write_through_one_alias(pair, again):
    pair[0][0] = -7.0
    return pair[0] is pair[1], pair[1] is again, float(pair[1][0]), float(again[0])


@parsl.python_app
def describe(x):
    return x.__class__.__name__, x.nbytes, bytes(x[:3]), x.readonly


MODES = ["decorator", "decorator-evict", "plugin", "plugin-evict"]


@pytest.fixture(params=MODES)
def run(request: pytest.FixtureRequest, htex: None, tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Submits an app with byref in one of its modes; returns the task's result."""
    store = byref.Store(tmp_path.as_uri())
    evict = request.param.endswith("-evict")
    if request.param.startswith("decorator"):
        yield lambda app, *args: byref.parsl.proxy_args(store, release_on_completion=evict)(app)(
            *args
        )
        return
    byref.parsl.install(store, evict=evict)
    yield lambda app, *args: app(*args)
    byref.parsl.uninstall()


def test_mutate_and_return(run: Callable[..., Any]) -> None:
    original = np.full(N, 0.5)
    result = run(mutate_and_return, original).result(timeout=120)
    assert float(result[0]) == 1.5 and float(np.asarray(result).sum()) == 1.5 * N
    assert float(original[0]) == 0.5, "the task's write stays in the task"


def test_one_object_met_twice_arrives_as_one_object(run: Callable[..., Any]) -> None:
    # As pickle keeps it (plain Parsl gives the same): one array, twice in a list and once
    # more as another argument, is one object in the task; a write through one alias is seen
    # through the others.
    a = np.zeros(N)
    result = run(write_through_one_alias, [a, a], a).result(timeout=120)
    assert result == (True, True, -7.0, -7.0)
    assert float(a[0]) == 0.0, "the task's write stays in the task"


def test_a_memoryview_arrives_as_a_memoryview(run: Callable[..., Any]) -> None:
    view = memoryview(bytearray(b"abc" * N))
    assert run(describe, view).result(timeout=120) == ("memoryview", 3 * N, b"abc", False)
    back = run(return_unchanged, view).result(timeout=120)
    assert (back.__class__, back.nbytes, bytes(back[:3])) == (memoryview, 3 * N, b"abc")


def test_copy_inside_the_task(run: Callable[..., Any]) -> None:
    assert run(copy_inside, np.full(N, 0.5)).result(timeout=120) == (1.5, 0.5, 0.5)


def test_return_unchanged(run: Callable[..., Any]) -> None:
    result = run(return_unchanged, np.full(N, 0.5)).result(timeout=120)
    assert float(np.asarray(result).sum()) == 0.5 * N


def test_use_and_return(run: Callable[..., Any]) -> None:
    result = run(use_and_return, np.full(N, 0.5)).result(timeout=120)
    assert float(np.asarray(result).sum()) == 0.5 * N


def test_a_worker_resolved_proxy_goes_on_to_a_second_task(run: Callable[..., Any]) -> None:
    first = run(mutate_and_return, np.full(N, 0.5))
    # Parsl hands the first result to the second task; then the submitter uses it too.
    assert run(total, first).result(timeout=120) == 1.5 * N
    assert run(total, first.result()).result(timeout=120) == 1.5 * N


def test_write_into_an_argument(run: Callable[..., Any]) -> None:
    original = np.full(N, 0.5)
    assert run(write_into, original).result(timeout=120) == (42.0, 42.0 + (N - 1))
    assert float(original[0]) == 0.5


STORES = ["file", "redis", "s3", "quic", "peer"]


@pytest.fixture(params=STORES)
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> byref.Store:
    """A store of every kind workers can reach (a memory store lives in one process)."""
    kind, unique = request.param, uuid.uuid4().hex
    if kind == "file":
        return byref.Store(tmp_path.as_uri())
    if kind == "redis":
        return byref.Store(request.getfixturevalue("redis_server").url, prefix=f"{unique}:")
    if kind == "s3":
        return byref.Store(request.getfixturevalue("moto_s3").url(unique))
    if kind == "quic":
        return byref.Store(request.getfixturevalue("shared_daemon").url)
    return byref.Store("peer://127.0.0.1", dir=str(tmp_path / "peer"))


@pytest.mark.parametrize("size", [1 << 17, N])  # 1 MiB (the threshold) and 2 MiB
def test_tasks_write_into_arguments_on_every_store(
    htex: None, any_store: byref.Store, size: int
) -> None:
    app = byref.parsl.proxy_args(any_store, threshold=1 << 20)(write_into)
    assert app(np.full(size, 0.5)).result(timeout=120) == (42.0, 42.0 + (size - 1))
    returned = byref.parsl.proxy_args(any_store, threshold=1 << 20)(mutate_and_return)
    assert float(np.asarray(returned(np.full(size, 0.5)).result(timeout=120))[0]) == 1.5


@parsl.python_app
def after_a_while(seconds):
    import time

    time.sleep(seconds)
    return seconds


@parsl.python_app
def first_element(x, _after):
    return float(x[0])


def test_a_change_made_before_launch_reaches_the_task(htex: None, tmp_path: Path) -> None:
    # Plain Parsl pickles arguments when the task launches: byref must not send an older value.
    app = byref.parsl.proxy_args(byref.Store(tmp_path.as_uri()))(first_element)
    array = np.zeros(N)
    future = app(array, after_a_while(1))  # launches only when the dependency is done
    array[0] = 7.0
    assert future.result(timeout=120) == 7.0


def test_a_result_feeds_several_tasks_and_the_submitter(run: Callable[..., Any]) -> None:
    first = run(mutate_and_return, np.full(N, 0.5))
    # One result, three consumers: two tasks (each pickles it) and this process.
    second, third = run(total, first), run(total, first)
    assert second.result(timeout=120) == third.result(timeout=120) == 1.5 * N
    assert float(np.asarray(first.result()).sum()) == 1.5 * N
    assert run(total, first.result()).result(timeout=120) == 1.5 * N
