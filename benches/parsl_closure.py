"""A task function that carries 100 MB: a closure over an array, called 5 times, on a real
local HighThroughputExecutor (2 workers), against passing the same array as an argument.

Modes, in one run: inline (Parsl's own serializers: the array in every task message), the
plugin (``byref.parsl.install``: the function's array stored once, by reference), the
decorator (``@byref.parsl.proxy_args``, which does not proxy inside functions yet), ProxyStore's
Parsl serializer (if installed; it proxies arguments only), and, as the baseline the issue
asks byref to come within 2x of, the plugin with the array passed as a proxied argument. For
each: the function's pickled size (what every task message carries) and the seconds per call,
the median of 3 rounds of 5 calls submitted at once. Writes benches/RESULTS-parsl-closure.md.

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
    modes: dict[str, tuple[Any, Callable[[int], Any], Any]] = {
        "inline": (nothing, closure, closure.func),
        "plugin": (lambda: plugin(store), closure, closure.func),
        "decorator": (nothing, decorated, decorated),
    }
    ps = proxystore_mode(work / "proxystore", byref.parsl.Policy())
    if ps is not None:
        modes["proxystore"] = (ps, closure, closure.func)
    parsl.load(local_config(work / "runinfo"))
    rows = []
    try:
        for mode, (setup, app, func) in modes.items():
            with setup():
                size = len(serialize(func)) if mode != "decorator" else None
                seconds = per_call(app, args.calls)
            rows.append((mode, size, seconds))
            print(f"{mode:<11} {fmt_time(seconds):>9} per call", file=sys.stderr, flush=True)
        with plugin(store):
            baseline = per_call(lambda i: as_argument(data, i), args.calls)
    finally:
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
        shown = "-" if size is None else f"{size:,} B"
        lines.append(f"| {mode} | {shown} | {fmt_time(seconds)} | {seconds / baseline:.2f}x |")
    publish(
        "\n".join(lines),
        "RESULTS-parsl-closure.md",
        "Parsl: a task function carrying 100 MB",
        "`python benches/parsl_closure.py` (in `make bench`)",
    )


if __name__ == "__main__":
    main()
