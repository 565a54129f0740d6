"""Tasks' results by reference, with the plugin and the decorator, on a real HTEX: fetched only
by the tasks that use them, and released once nothing in the submitting process refers to them.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

import byref.parsl  # noqa: E402

from .servers import QuicDaemon, requests_served, wait_for  # noqa: E402


@parsl.python_app
def make_array(n, fill=2.0):
    import numpy as np

    return np.full(n, fill)


@parsl.python_app
def total(x, wait=0.0):
    import time

    import numpy as np

    time.sleep(wait)
    return float(np.asarray(x).sum())


@pytest.fixture(autouse=True)
def no_parsl_debug_records() -> Iterator[None]:
    """No debug records from Parsl while these tests run. pytest's log capture keeps every
    record until the test ends, with its arguments, and Parsl's debug lines pass it task
    futures ("Task %s has AppFuture: %r"): a reference to each result, which would then
    never be released. A script's log (Parsl's file) formats a record and drops it."""
    logger = logging.getLogger("parsl")
    level = logger.level
    logger.setLevel(logging.INFO)
    yield
    logger.setLevel(level)


@pytest.fixture
def plugin(shared_daemon: QuicDaemon) -> Iterator[byref.Store]:
    store = byref.Store(shared_daemon.url)
    byref.parsl.install(store)
    yield store
    byref.parsl.uninstall()


def settle() -> None:
    """Lets go what Parsl still holds of finished tasks: HTEX's result thread keeps the last
    result's future in a local variable until the next result arrives."""
    assert total(0.0).result(timeout=120) == 0.0
    gc.collect()


def served_since(url: str, before: dict[str, int]) -> dict[str, int]:
    now = requests_served(url)
    return {op: now[op] - before.get(op, 0) for op in now}


def test_plugin_results_come_back_by_reference_and_are_fetched_once(
    htex: None, plugin: byref.Store
) -> None:
    """No change to the apps: a task's large result is stored by its worker and comes back as
    a proxy; passed on to the next task it is fetched by that task only (before: it came
    back by value through the interchange, and went out again as a new argument)."""
    settle()  # the run's record is written before counting
    before = requests_served(plugin.url)
    first = make_array(1 << 20, 3.0)  # 8 MiB
    second = total(first)
    assert second.result(timeout=120) == 3.0 * (1 << 20)
    result = first.result(timeout=120)
    assert type(result) is byref.Proxy
    assert not byref.is_resolved(result), "the submitter fetched a result it only passed on"
    assert not byref.handle_of(result).evict, "the run holds it: any task may resolve it"
    served = served_since(plugin.url, before)
    assert served["put"] == 1, served  # the worker's, once: not stored again by the submitter
    assert served["get"] == 1, served  # the second task's fetch, only
    assert float(np.asarray(result).sum()) == 3.0 * (1 << 20)  # touched here: fetched here


def test_a_result_stays_while_a_pending_task_refers_to_it_then_goes(
    htex: None, plugin: byref.Store
) -> None:
    """The submitter drops the producing task's future while the consuming task is pending:
    the result stays for that task, then is released with no cleanup of the run."""
    first = make_array((1 << 18) + 7, 5.0)
    key = byref.handle_of(first.result(timeout=120)).key
    second = total(first, wait=1.0)
    del first
    gc.collect()
    assert plugin.exists(key)
    assert second.result(timeout=120) == 5.0 * ((1 << 18) + 7)
    del second
    settle()
    wait_for(lambda: not plugin.exists(key), "the result released", timeout=30)


def test_a_run_of_many_results_holds_only_those_referred_to(
    htex: None, plugin: byref.Store
) -> None:
    """A run of many large results, each consumed and dropped, does not hold them all until
    its end: what the store holds stays that of the results still referred to."""
    keys, kept = [], None
    for i in range(8):
        made = make_array((1 << 18) + 100 + i, float(i))
        assert total(made).result(timeout=120) == float(i) * ((1 << 18) + 100 + i)
        keys.append(byref.handle_of(made.result()).key)
        if i == 3:
            kept = made.result()  # one the user keeps a name for
        del made
        gc.collect()
    settle()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and sum(plugin.exists(k) for k in keys) > 1:
        time.sleep(0.2)
    assert [plugin.exists(k) for k in keys] == [i == 3 for i in range(8)]
    assert float(np.asarray(kept).sum()) == 3.0 * ((1 << 18) + 103)


def test_decorator_results_are_released_once_nothing_refers_to_them(
    htex: None, shared_daemon: QuicDaemon
) -> None:
    store = byref.Store(shared_daemon.url)
    made = byref.parsl.proxy_args(store, results=True)(make_array)((1 << 18) + 11, 7.0)
    result = made.result(timeout=120)
    key = byref.handle_of(result).key
    assert not byref.handle_of(result).evict
    consumed = byref.parsl.proxy_args(store)(total)(result)
    assert consumed.result(timeout=120) == 7.0 * ((1 << 18) + 11)
    assert store.exists(key)
    del made, result, consumed
    settle()
    wait_for(lambda: not store.exists(key), "the result released", timeout=30)
