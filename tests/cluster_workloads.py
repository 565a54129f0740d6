"""The cluster workloads (issue 29), for ``tests/test_cluster.py`` and ``benches/cluster.py``.

Each takes a size, sends tasks to the nodes of a loaded :class:`tests.cluster.Cluster` (its
executors ``node1``, ``node2``...), checks every answer and returns the seconds from the first
submission to the last result:

- ``broadcast``: one array of ``size`` bytes to 8 tasks, spread over the nodes;
- ``distinct``: 8 tasks, each its own array of ``size / 4`` bytes;
- ``chain``: a task on node 1 makes an array of ``size`` bytes, a task on node 2 sums it;
- ``one``: the chain's baseline, an array of ``size`` bytes passed to one task on node 2;
- ``small``: 200 tasks of ``size / 1000`` bytes each (300 kB at 300 MB).

``mode`` says how arguments and results travel: ``inline`` (Parsl's own serializer), ``plugin``
(``byref.parsl.install(store)``) or ``decorator`` (``proxy_args(store, results=True)``).
Each repetition's arrays differ (``seed``): content addressing and node caches cannot reuse
an earlier one's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any

import numpy as np
import parsl

import byref
import byref.parsl

TASKS = 8
SMALL_TASKS = 200
WORKLOADS = ("broadcast", "distinct", "chain", "one", "small")
MODES = ("inline", "plugin", "decorator")


def total(x: Any) -> float:
    import numpy as np

    return float(np.asarray(x).sum())


def produce(n: int, fill: float) -> Any:
    import numpy as np

    return np.full(n, fill)


def _array(nbytes: int, seed: float) -> np.ndarray:
    return np.full(max(nbytes // 8, 1), seed)


class Apps:
    """``total`` and ``produce`` as apps bound to each node, as ``mode`` sends them (with
    ``threshold``: by default the store's)."""

    def __init__(
        self, nodes: int, mode: str, store: byref.Store | None, threshold: int | None = None
    ) -> None:
        def bound(func: Callable[..., Any], node: int) -> Any:
            app = parsl.python_app(func, executors=[f"node{node}"])
            if mode == "decorator":
                return byref.parsl.proxy_args(store, threshold, results=True)(app)
            return app

        self.nodes = nodes
        self.total = [bound(total, k) for k in range(1, nodes + 1)]
        self.produce = [bound(produce, k) for k in range(1, nodes + 1)]


@contextmanager
def sending(mode: str, store: byref.Store | None, threshold: int | None = None) -> Any:
    """The serializer ``mode`` needs installed while the block runs."""
    if mode == "plugin":
        byref.parsl.install(store, threshold)
    try:
        yield
    finally:
        if mode == "plugin":
            byref.parsl.uninstall()


def _results(futures: list[Any], expected: list[float]) -> None:
    got = [f.result(timeout=1800) for f in futures]
    assert got == expected, (got, expected)


def run(workload: str, size: int, apps: Apps, seed: float) -> float:
    """Runs ``workload`` once at ``size`` bytes; its seconds, submission to last result."""
    nodes = apps.nodes
    if workload == "broadcast":
        x = _array(size, seed)
        start = time.perf_counter()
        _results([apps.total[i % nodes](x) for i in range(TASKS)], [float(x.sum())] * TASKS)
    elif workload in ("distinct", "small"):
        count, each = (TASKS, size // 4) if workload == "distinct" else (SMALL_TASKS, size // 1000)
        xs = [_array(each, seed * 1000 + i) for i in range(count)]
        start = time.perf_counter()
        _results([apps.total[i % nodes](x) for i, x in enumerate(xs)], [float(x.sum()) for x in xs])
    elif workload == "chain":
        n = max(size // 8, 1)
        start = time.perf_counter()
        made = apps.produce[0](n, seed)
        _results([apps.total[1 % nodes](made)], [float(seed) * n])
    elif workload == "one":
        x = _array(size, seed)
        start = time.perf_counter()
        _results([apps.total[1 % nodes](x)], [float(x.sum())])
    else:
        raise ValueError(f"no workload {workload!r}: one of {WORKLOADS}")
    return time.perf_counter() - start
