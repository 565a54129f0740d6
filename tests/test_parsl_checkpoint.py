"""Parsl checkpoints with proxies: a second run reuses the first's results, by reference."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

from parsl.config import Config  # noqa: E402
from parsl.dataflow.memoization import BasicMemoizer  # noqa: E402
from parsl.executors import HighThroughputExecutor  # noqa: E402
from parsl.providers import LocalProvider  # noqa: E402

import byref.parsl  # noqa: E402


@parsl.python_app(cache=True)
def scaled(x, factor):
    return np.asarray(x) * factor


def run_once(run_dir: Path, store: byref.Store, array: np.ndarray) -> tuple[object, bool]:
    executor = HighThroughputExecutor(
        label="htex",
        address="127.0.0.1",
        loopback_address="127.0.0.1",
        max_workers_per_node=2,
        provider=LocalProvider(init_blocks=1, max_blocks=1),
    )
    memoizer = BasicMemoizer(checkpoint_mode="task_exit")
    dfk = parsl.load(Config(executors=[executor], run_dir=str(run_dir), memoizer=memoizer))
    try:
        app = byref.parsl.proxy_args(store, results=True)(scaled)
        future = app(array, 3)
        return future.result(timeout=120), future.task_record["from_memo"]
    finally:
        dfk.cleanup()
        parsl.clear()


def test_a_checkpointed_result_is_reused_by_reference(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The workers import this module's app, as a user's workers their package.
    root = str(Path(__file__).resolve().parents[1])
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p)
    )
    store = byref.Store((tmp_path / "store").as_uri())
    array = np.arange(1 << 18, dtype=np.float64)
    first, first_memo = run_once(tmp_path / "runinfo", store, array)
    # Equal content in a new array: the checkpoint is keyed by content, not identity.
    second, second_memo = run_once(tmp_path / "runinfo", store, array.copy())
    assert not first_memo and second_memo
    assert byref.is_proxy(first) and byref.is_proxy(second)
    assert byref.handle_of(second).key == byref.handle_of(first).key
    assert np.array_equal(second, array * 3)
