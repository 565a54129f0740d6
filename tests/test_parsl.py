"""byref.parsl on a real local HighThroughputExecutor (2 workers, 127.0.0.1)."""

from __future__ import annotations

import importlib
import inspect
import pickle
import sqlite3
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import dill
import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

from parsl.serialize import errors as parsl_errors  # noqa: E402
from parsl.serialize import facade  # noqa: E402

import byref.parsl  # noqa: E402
from byref.parsl.arguments import parsl_policy  # noqa: E402
from byref.parsl.pickler import dumps_function  # noqa: E402

from .servers import RedisServer  # noqa: E402


@pytest.fixture
def store(tmp_path: Path) -> byref.Store:
    return byref.Store(tmp_path.as_uri())


@parsl.python_app
def describe(x, nested=None):
    kinds = {"x": type(x).__name__}
    if nested is not None:
        kinds["nested"] = [type(v).__name__ for v in nested["arrays"]]
        kinds["small"] = type(nested["small"]).__name__
    total = float(np.asarray(x).sum()) if hasattr(x, "shape") else 0.0
    return kinds, total


def test_large_arguments_travel_as_proxies_small_ones_inline(
    htex: None, store: byref.Store
) -> None:
    app = byref.parsl.proxy_args(store, threshold=1 << 20)(describe)
    big = np.ones(1 << 18)  # 2 MiB
    nested = {"arrays": [np.ones(1 << 18), np.ones(10)], "small": np.ones(10)}
    kinds, total = app(big, nested=nested).result(timeout=120)
    assert kinds == {"x": "Proxy", "nested": ["Proxy", "ndarray"], "small": "ndarray"}
    assert total == float(1 << 18)


def test_workers_fetch_arguments_from_a_peer_submitter(htex: None, tmp_path: Path) -> None:
    # No store server at all: the submitting process serves its arguments to the workers.
    peer = byref.Store("peer://127.0.0.1", dir=str(tmp_path / "peer"))
    app = byref.parsl.proxy_args(peer, threshold=1 << 20)(describe)
    kinds, total = app(np.ones(1 << 18)).result(timeout=120)
    assert kinds == {"x": "Proxy"}
    assert total == float(1 << 18)


def test_the_old_keyword_evict_names_the_new_one(store: byref.Store) -> None:
    with pytest.raises(TypeError, match="release_on_completion="):
        byref.parsl.proxy_args(store, evict=True)
    with pytest.raises(TypeError, match="'evcit'"):
        byref.parsl.proxy_args(store, evcit=True)


def test_wrapping_keeps_name_signature_and_wrapped(store: byref.Store) -> None:
    app = byref.parsl.proxy_args(store)(describe)
    assert app.__name__ == "describe" and app.__wrapped__ is describe
    assert inspect.signature(app) == inspect.signature(describe)


@parsl.python_app
def add_one(x):
    return x + 1


def test_futures_between_apps_stay_dependencies(htex: None, store: byref.Store) -> None:
    app = byref.parsl.proxy_args(store, threshold=1 << 20)(add_one)
    first = app(np.zeros(1 << 18))
    second = app(first)  # a future: Parsl must wait for it, not proxy it
    assert float(second.result(timeout=120).sum()) == 2.0 * (1 << 18)


def test_release_on_completion_releases_inputs_when_the_task_completes(
    htex: None, store: byref.Store
) -> None:
    array = np.arange(1 << 18, dtype=np.float64)
    key = store.put(array)
    store.evict(key)
    app = byref.parsl.proxy_args(store, release_on_completion=True)(add_one)
    app(array).result(timeout=120)
    deadline = time.monotonic() + 10
    while store.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)  # done-callbacks run just after result() returns
    assert not store.exists(key)


def test_types_are_proxied_whatever_their_size(htex: None, store: byref.Store) -> None:
    app = byref.parsl.proxy_args(store, types=(dict,))(describe)
    kinds, _ = app({"a": 1}).result(timeout=120)
    assert kinds["x"] == "Proxy"


@parsl.python_app
def total(x):
    return float(np.asarray(x).sum())


@parsl.python_app
def make_array(n):
    return np.full(n, 2.0)


def test_results_come_back_as_proxies(htex: None, store: byref.Store) -> None:
    app = byref.parsl.proxy_args(store, results=True)(make_array)
    result = app(1 << 18).result(timeout=120)
    assert type(result) is byref.Proxy and not byref.is_resolved(result)
    assert store.exists(byref.handle_of(result).key)
    assert float(result.sum()) == 2.0 * (1 << 18)
    # A proxied result is an argument like any other, still by reference.
    assert byref.parsl.proxy_args(store)(total)(result).result(timeout=120) == 2.0 * (1 << 18)
    small = byref.parsl.proxy_args(store, results=True)(make_array)(4).result(timeout=120)
    assert type(small) is np.ndarray


def test_a_result_passed_on_is_not_fetched_by_the_submitter(htex: None, store: byref.Store) -> None:
    """A chain: one task's result (a proxy) becomes the next task's argument. The submitter
    hands it on without fetching it, though HTEX logs repr() of every argument (before: that
    repr() fetched it, so every link of a chain went through the submitting process)."""
    first = byref.parsl.proxy_args(store, results=True)(make_array)(1 << 18)
    second = byref.parsl.proxy_args(store)(total)(first)
    assert second.result(timeout=120) == 2.0 * (1 << 18)
    passed_on = first.result(timeout=120)  # the very object Parsl gave the second task
    assert type(passed_on) is byref.Proxy
    assert not byref.is_resolved(passed_on)
    assert repr(passed_on).startswith("<byref proxy of numpy.ndarray, 2,097,")
    assert not byref.is_resolved(passed_on)
    assert "2. 2. 2." in str(passed_on)  # str() is the value's, fetched
    assert repr(passed_on) == repr(np.full(1 << 18, 2.0))  # and, fetched, so is repr()


@pytest.fixture
def plugin(store: byref.Store) -> Iterator[byref.Store]:
    byref.parsl.install(store)
    yield store
    byref.parsl.uninstall()


def test_plugin_sends_buffers_out_of_band_without_changing_apps(
    htex: None, plugin: byref.Store
) -> None:
    big = np.ones(1 << 18)  # 2 MiB, which dill would copy into the task
    nested = {"arrays": [np.ones(1 << 18), np.ones(10)], "small": np.ones(10)}
    message = facade.pack_apply_message(describe, (big,), {"nested": nested})
    assert len(message) < 64 * 1024
    kinds, total_ = describe(big, nested=nested).result(timeout=120)
    assert kinds == {"x": "Proxy", "nested": ["Proxy", "ndarray"], "small": "ndarray"}
    assert total_ == float(1 << 18)


def tables() -> tuple[dict[bytes, object], ...]:
    return (
        dict(facade.methods_for_data),
        dict(facade.methods_for_code),
        dict(facade.additional_methods_for_deserialization),
    )


def test_uninstall_restores_exactly_what_was_there(store: byref.Store) -> None:
    before = tables()
    byref.parsl.install(store)
    assert [type(s).__name__ for s in facade.methods_for_data.values()] == ["ByrefSerializer"]
    byref.parsl.uninstall()
    assert tables() == before


def test_results_decode_when_other_code_resets_the_deserialization_table(
    htex: None, plugin: byref.Store
) -> None:
    # What Parsl's own ProxyStore set-up does in its teardown.
    saved = dict(facade.additional_methods_for_deserialization)
    facade.additional_methods_for_deserialization.clear()
    try:
        assert total(np.ones(1 << 18)).result(timeout=120) == float(1 << 18)
        assert add_one(np.zeros(4)).result(timeout=120).tolist() == [1.0] * 4
    finally:
        facade.additional_methods_for_deserialization.update(saved)


def test_plugin_gives_each_task_a_reference_of_its_own(plugin: byref.Store) -> None:
    # A proxy released on its first resolve, as a task's result arrives here, unresolved; Parsl
    # serializes it once for each task it feeds (HTEX happens to resolve it first, for a log
    # line; other executors do not).
    result = pickle.loads(pickle.dumps(plugin.proxy(np.ones(1 << 18), evict=True)))
    messages = [facade.serialize((result,)) for _ in range(2)]
    for message in messages:
        (arg,) = facade.deserialize(message)
        assert float(np.asarray(arg).sum()) == float(1 << 18)
    assert float(np.asarray(result).sum()) == float(1 << 18)


def test_plugin_with_a_threshold_under_a_handles_length(store: byref.Store) -> None:
    """Every buffer proxied (threshold 1, as benches/cluster.py --crossover does): the handles
    the proxies pickle as are bytes too, and are not proxied in turn (before: recursion
    without end, "maximum recursion depth exceeded")."""
    byref.parsl.install(store, threshold=1)
    try:
        given = byref.Store(store.url).proxy(b"a proxy passed on")
        message = facade.serialize((b"xy", np.arange(3.0), given))
        small, array, passed = facade.deserialize(message)
        assert byref.is_proxy(small) and byref.is_proxy(array) and byref.is_proxy(passed)
        assert (bytes(small), list(array), bytes(passed)) == (
            b"xy",
            [0, 1, 2],
            b"a proxy passed on",
        )
    finally:
        byref.parsl.uninstall()
    # A function pickled by value: what it carries is proxied, its code's bytes are not
    # (before: they were, and the worker could not rebuild the code).
    carried = np.arange(5.0)
    pickled = dumps_function(lambda x: float(carried.sum()) + x, store, parsl_policy(1))
    assert dill.loads(pickled)(1.0) == 11.0


def test_plugin_proxies_are_released_once_resolved(htex: None, plugin: byref.Store) -> None:
    array = np.arange(1 << 18, dtype=np.float64)
    key = byref.key_of(array)
    assert total(array).result(timeout=120) == float(array.sum())
    assert not plugin.exists(key)


def test_plugin_names_the_argument_that_cannot_be_pickled(htex: None, plugin: byref.Store) -> None:
    class Model:
        def __init__(self) -> None:
            self.fn = sqlite3.connect(":memory:")

    future = describe(np.ones(1 << 18), {"model": Model()})
    with pytest.raises(byref.SerializationError, match=r"args\[1\]\['model'\]\.fn") as raised:
        future.result(timeout=120)
    # Also Parsl's own type, for code that catches that; still pickles as it was.
    assert isinstance(raised.value, parsl_errors.SerializationError)
    back = pickle.loads(pickle.dumps(raised.value))
    assert type(back) is type(raised.value) and str(back) == str(raised.value)


def test_evicted_argument_fails_on_the_worker_naming_key_and_store(
    htex: None, store: byref.Store
) -> None:
    proxy = store.proxy(np.ones(10))
    key = byref.handle_of(proxy).key
    store.evict(key)
    with pytest.raises(byref.ObjectNotFound) as raised:
        total(proxy).result(timeout=120)
    assert key in str(raised.value) and store.url in str(raised.value)


def test_unreachable_backend_fails_on_the_worker_naming_key_and_store(htex: None) -> None:
    server = RedisServer()
    try:
        proxy = byref.Store(server.url, timeout=2).proxy(np.ones(10))
    finally:
        server.stop()
    key = byref.handle_of(proxy).key
    with pytest.raises(byref.BackendError) as raised:
        total(proxy).result(timeout=120)
    assert key in str(raised.value) and server.url in str(raised.value)


@pytest.fixture
def submit_only_module(tmp_path: Path) -> Iterator[object]:
    """An app in a module only this process can import: the workers started without it."""
    (tmp_path / "byref_submit_only.py").write_text(
        "import parsl\n\n@parsl.python_app\ndef double(x):\n    return x * 2\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield importlib.import_module("byref_submit_only")
    sys.path.remove(str(tmp_path))
    sys.modules.pop("byref_submit_only", None)


def test_decorator_names_a_module_missing_on_the_workers(
    htex: None, store: byref.Store, submit_only_module: object
) -> None:
    app = byref.parsl.proxy_args(store)(submit_only_module.double)  # type: ignore[attr-defined]
    with pytest.raises(
        byref.WorkerImportError, match=r"'byref_submit_only'.*importable on the workers"
    ) as raised:
        app(21).result(timeout=120)
    assert isinstance(raised.value, parsl_errors.DeserializationError)


def test_plugin_names_a_module_missing_on_the_workers(
    htex: None, plugin: byref.Store, submit_only_module: object
) -> None:
    with pytest.raises(
        byref.WorkerImportError, match=r"'byref_submit_only'.*importable on the workers"
    ):
        submit_only_module.double(21).result(timeout=120)  # type: ignore[attr-defined]


@parsl.python_app(cache=True)
def cached_total(x):
    return float(np.asarray(x).sum())


def test_memoization_keys_proxies_by_content(htex: None, store: byref.Store) -> None:
    app = byref.parsl.proxy_args(store)(cached_total)
    first = app(np.arange(1 << 18, dtype=np.float64))
    first.result(timeout=120)
    again = app(np.arange(1 << 18, dtype=np.float64))  # a different array, equal content
    other = app(np.arange(1 << 18, dtype=np.float64) + 1)
    assert again.result(timeout=120) == first.result()
    other.result(timeout=120)
    assert again.task_record["from_memo"] and not other.task_record["from_memo"]


def test_memoization_with_the_plugin_keys_plain_arrays_by_content(
    htex: None, plugin: byref.Store
) -> None:
    first = cached_total(np.arange(1 << 18, dtype=np.float32))
    first.result(timeout=120)
    again = cached_total(np.arange(1 << 18, dtype=np.float32))
    assert again.result(timeout=120) == first.result() and again.task_record["from_memo"]


@parsl.python_app(cache=True)
def cached_size(x):
    return len(x)


def test_memoization_of_values_proxied_by_type(htex: None, store: byref.Store) -> None:
    # Parsl's own dict hashing refuses anything whose type() is not dict, as a proxy's is not.
    app = byref.parsl.proxy_args(store, types=(dict,))(cached_size)
    first = app({"a": 1, "b": 2})
    assert first.result(timeout=120) == 2
    again = app({"a": 1, "b": 2})
    assert again.result(timeout=120) == 2 and again.task_record["from_memo"]


@pytest.mark.parametrize(
    ("cls", "parsl_cls"),
    [
        (byref.parsl.errors.SerializationError, parsl_errors.SerializationError),
        (byref.parsl.errors.WorkerImportError, parsl_errors.DeserializationError),
    ],
)
def test_parsl_flavoured_errors_are_both_and_pickle(cls: type, parsl_cls: type) -> None:
    err = cls("cannot pickle args[0]: no")
    assert isinstance(err, byref.ByrefError) and isinstance(err, parsl_cls)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == "cannot pickle args[0]: no"
