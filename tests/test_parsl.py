"""byref.parsl on a real local HighThroughputExecutor (2 workers, 127.0.0.1)."""

from __future__ import annotations

import inspect
import os
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

from parsl.config import Config  # noqa: E402
from parsl.executors import HighThroughputExecutor  # noqa: E402
from parsl.providers import LocalProvider  # noqa: E402

import byref.parsl  # noqa: E402


@pytest.fixture(scope="module")
def htex(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # The apps below are pickled by reference (module `tests.test_parsl`): the workers, which
    # inherit this environment, must be able to import it, as a user's workers their package.
    root = str(Path(__file__).resolve().parents[1])
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (root, saved) if p)
    executor = HighThroughputExecutor(
        label="htex",
        address="127.0.0.1",
        loopback_address="127.0.0.1",
        max_workers_per_node=2,
        provider=LocalProvider(init_blocks=1, max_blocks=1),
    )
    dfk = parsl.load(Config(executors=[executor], run_dir=str(tmp_path_factory.mktemp("parsl"))))
    yield
    dfk.cleanup()
    parsl.clear()
    if saved is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = saved


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


def test_evict_releases_inputs_when_the_task_completes(htex: None, store: byref.Store) -> None:
    array = np.arange(1 << 18, dtype=np.float64)
    key = store.put(array)
    store.evict(key)
    app = byref.parsl.proxy_args(store, evict=True)(add_one)
    app(array).result(timeout=120)
    deadline = time.monotonic() + 10
    while store.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)  # done-callbacks run just after result() returns
    assert not store.exists(key)


def test_types_are_proxied_whatever_their_size(htex: None, store: byref.Store) -> None:
    app = byref.parsl.proxy_args(store, types=(dict,))(describe)
    kinds, _ = app({"a": 1}).result(timeout=120)
    assert kinds["x"] == "Proxy"
