"""A task function that carries 100 MB: a closure over an array, called 5 times, on a real
local HighThroughputExecutor (2 workers), against passing the same array as an argument.

Modes, in one run: inline (Parsl's own serializers: the array in every task message), the
plugin (``byref.parsl.install``: the function's array stored once, by reference), the
decorator (``@byref.parsl.proxy_args``), ProxyStore's Parsl serializer (if installed; it
proxies arguments only), and, as the baseline the issue asks byref to come within 2x of, the
plugin with the array passed as a proxied argument. For each: the function as pickled into the
task message (the largest, as HTEX packs it) and the seconds per call, the median of 3 rounds
of 5 calls submitted at once. Writes benches/RESULTS-parsl-closure.md.

Usage: python benches/parsl_closure.py [--mib 100] [--calls 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import parsl
from parsl.executors.high_throughput import executor as htex
from parsl.serialize import serialize
from parsl_throughput import nothing, plugin, proxystore_mode
from timing import fmt_time, publish

import byref
import byref.parsl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.htex import local_config


def closure_over(data: np.ndarray) -> Callable[[int], float]:
    def pick(i: int) -> float:
        return float(data[i])

    return pick


def pick_from(data: np.ndarray, i: int) -> float:
    return float(data[i])


def per_call(submit: Callable[[int], Any], calls: int, rounds: int = 3) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for f in [submit(i) for i in range(calls)]:
            f.result()
        times.append((time.perf_counter() - t0) / calls)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mib", type=int, default=100)
    parser.add_argument("--calls", type=int, default=5)
    args = parser.parse_args()
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    work = Path(tempfile.mkdtemp(prefix="byref-closure-bench-"))
    store = byref.Store((work / "byref").as_uri())
    data = np.arange((args.mib << 20) // 8, dtype=np.float64)
    closure = parsl.python_app(closure_over(data))
    decorated = byref.parsl.proxy_args(store)(parsl.python_app(closure_over(data)))
    as_argument = parsl.python_app(pick_from)
    modes: dict[str, tuple[Any, Callable[[int], Any]]] = {
        "inline": (nothing, closure),
        "plugin": (lambda: plugin(store), closure),
        "decorator": (nothing, decorated),
    }
    ps = proxystore_mode(work / "proxystore", byref.parsl.Policy())
    if ps is not None:
        modes["proxystore"] = (ps, closure)
    # The function as HTEX packs it into each task message (cached by Parsl and byref alike).
    sent: list[int] = []
    pack = htex.pack_apply_message
    htex.pack_apply_message = lambda fn, *a, **k: (
        sent.append(len(serialize(fn))) or pack(fn, *a, **k)
    )
    parsl.load(local_config(work / "runinfo"))
    rows = []
    try:
        for mode, (setup, app) in modes.items():
            sent.clear()
            with setup():
                seconds = per_call(app, args.calls)
            rows.append((mode, max(sent), seconds))
            print(f"{mode:<11} {fmt_time(seconds):>9} per call", file=sys.stderr, flush=True)
        with plugin(store):
            baseline = per_call(lambda i: as_argument(data, i), args.calls)
    finally:
        htex.pack_apply_message = pack
        parsl.dfk().cleanup()
        parsl.clear()
        shutil.rmtree(work, ignore_errors=True)
    lines = [
        f"A closure over {args.mib} MiB, {args.calls} calls submitted at once (median of 3 "
        f"rounds); baseline: the plugin with the array as a proxied argument, "
        f"{fmt_time(baseline)} per call.",
        "",
        "| mode | function pickled | per call | vs baseline |",
        "|---|---|---|---|",
    ]
    for mode, size, seconds in rows:
        lines.append(f"| {mode} | {size:,} B | {fmt_time(seconds)} | {seconds / baseline:.2f}x |")
    publish(
        "\n".join(lines),
        "RESULTS-parsl-closure.md",
        "Parsl: a task function carrying 100 MB",
        "`python benches/parsl_closure.py` (in `make bench`)",
    )


if __name__ == "__main__":
    main()
