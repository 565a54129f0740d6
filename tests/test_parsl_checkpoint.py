"""Parsl checkpoints with proxies: a second run reuses the first's results, by reference."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

from parsl.dataflow.memoization import BasicMemoizer  # noqa: E402

import byref.parsl  # noqa: E402

from .htex import loaded  # noqa: E402


@parsl.python_app(cache=True)
def scaled(x, factor):
    return np.asarray(x) * factor


def run_once(run_dir: Path, store: byref.Store, array: np.ndarray) -> tuple[object, bool]:
    with loaded(run_dir, memoizer=BasicMemoizer(checkpoint_mode="task_exit")):
        future = byref.parsl.proxy_args(store, results=True)(scaled)(array, 3)
        return future.result(timeout=120), future.task_record["from_memo"]


def test_a_checkpointed_result_is_reused_by_reference(tmp_path: Path) -> None:
    store = byref.Store((tmp_path / "store").as_uri())
    array = np.arange(1 << 18, dtype=np.float64)
    first, first_memo = run_once(tmp_path / "runinfo", store, array)
    # Equal content in a new array: the checkpoint is keyed by content, not identity.
    second, second_memo = run_once(tmp_path / "runinfo", store, array.copy())
    assert not first_memo and second_memo
    assert byref.is_proxy(first) and byref.is_proxy(second)
    assert byref.handle_of(second).key == byref.handle_of(first).key
    assert np.array_equal(second, array * 3)


def test_memoizing_and_checkpointing_a_proxy_do_not_fetch_it(tmp_path: Path) -> None:
    """Parsl keys memoized tasks by `id_for_memo` of each argument, and checkpoints pickle the
    result: neither may fetch a result a submitter only passes on. (Before: a proxy of a list
    failed the task, "id_for_memo_list cannot work on subclasses of list".)"""
    import pickle

    from parsl.dataflow.memoization import id_for_memo

    store = byref.Store((tmp_path / "store").as_uri())
    array = np.arange(1 << 18, dtype=np.float64)
    for proxy in (store.proxy(array), store.proxy([array, 1]), store.proxy({"a": array})):
        passed_on = pickle.loads(pickle.dumps(proxy))  # as a worker's result arrives
        assert id_for_memo(passed_on) == b"byref:" + byref.handle_of(passed_on).key.encode()
        assert pickle.loads(pickle.dumps(passed_on)) is not None
        assert not byref.is_resolved(passed_on)
    # Plain containers are keyed as Parsl keys them.
    assert id_for_memo([1, (2, 3)]) == id_for_memo([1, (2, 3)]) != id_for_memo([1, (2, 4)])
    assert id_for_memo({"a": 1}) == id_for_memo({"a": 1})
