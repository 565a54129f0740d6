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
