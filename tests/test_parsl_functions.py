"""Bulk inside functions (issue 28): the large arrays a task's function carries when it is
pickled by value — a closure's cells, a default argument, a callable object's state, a bound
method's object, a ``functools.partial``'s arguments — travel by reference with the plugin,
stored once per function however many tasks call it. A real HTEX."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

from parsl.executors.high_throughput import executor as parsl_pack  # noqa: E402
from parsl.serialize import serialize  # noqa: E402

import byref.parsl  # noqa: E402

from .htex import loaded  # noqa: E402


def _pick_from(data: np.ndarray, i: int) -> float:
    return float(data[i])


class Picker:
    def __init__(self, data: np.ndarray) -> None:
        self.data = data

    def __call__(self, i: int) -> float:
        return float(self.data[i])

    def pick(self, i: int) -> float:
        return float(self.data[i])


def closure(data: np.ndarray) -> Callable[[int], float]:
    def pick(i: int) -> float:
        return float(data[i])

    return pick


def default_argument(data: np.ndarray) -> Callable[[int], float]:
    def pick(i: int, data: np.ndarray = data) -> float:
        return float(data[i])

    return pick


def partial(data: np.ndarray) -> Callable[[int], float]:
    return functools.update_wrapper(functools.partial(_pick_from, data), _pick_from)


SHAPES: dict[str, Callable[[np.ndarray], Any]] = {
    "closure": closure,
    "default argument": default_argument,
    "partial": partial,
    "callable object": Picker,
    "bound method": lambda data: Picker(data).pick,
}


@pytest.mark.parametrize("mode", ["plugin", "decorator"])
def test_a_functions_large_arrays_go_by_reference_once(tmp_path: Path, mode: str) -> None:
    data = np.arange(1 << 20, dtype=np.float64)  # 8 MiB
    store = byref.Store((tmp_path / "store").as_uri())
    sent: list[int] = []
    with loaded(tmp_path / "parsl"), pytest.MonkeyPatch.context() as patch:
        inline = {
            name: len(serialize(parsl.python_app(make(data)).func)) for name, make in SHAPES.items()
        }
        # What the executor sends of each task: the function pickled, as Parsl does.
        packed = parsl_pack.pack_apply_message
        patch.setattr(
            parsl_pack,
            "pack_apply_message",
            lambda *a, **k: sent.append(len(serialize(a[0]))) or packed(*a, **k),
        )
        if mode == "plugin":
            byref.parsl.install(store)
        try:
            for make in SHAPES.values():
                app = parsl.python_app(make(data))
                if mode == "decorator":
                    app = byref.parsl.proxy_args(store)(app)
                assert [app(i).result(timeout=60) for i in (0, 1, 2, 3, 4)] == [0, 1, 2, 3, 4]
            stored = [o for o in store.ls(kinds=False) if o.size >= data.nbytes]
        finally:
            if mode == "plugin":
                byref.parsl.uninstall()
    assert all(size > data.nbytes for size in inline.values()), inline
    assert len(sent) == 5 * len(SHAPES) and max(sent) < 10_000, sent
    # Equal data is one object; each function holds it once, whatever its number of calls.
    assert len(stored) == 1 and len(stored[0].holders) == len(SHAPES), stored
    assert store.ls() == [], "the run's end released it"
