"""The main job: Parsl tasks with large arguments, inline pickling against byref, in one run.

A real local HighThroughputExecutor (2 workers on 127.0.0.1) runs a task that sums a float64
array, for argument sizes 1 KiB to 500 MiB, in each mode:

- inline: Parsl's own serializer, the array inside the task message;
- decorator: ``@byref.parsl.proxy_args(store, release_on_completion=True)`` above the app;
- plugin: ``byref.parsl.install(store)``, no change to the app;
- proxystore: Parsl's ``ProxyStoreSerializer`` with a ProxyStore ``FileConnector`` (if
  ProxyStore is installed), proxying what byref proxies.

byref's store is the embedded default: a file store in a temporary directory, no server.
ProxyStore's directory is beside it, on the same disk. For each size and mode it times one
task from submission to result (the median of a few, each on different data) and a batch of
20 tasks submitted at once, each on different data (20 overlapping slices of one buffer, so
content addressing cannot share them). Prints a table with speedups over inline, writes it to
benches/RESULTS-parsl.md and plots it to benches/parsl-throughput.png.

Usage: python benches/parsl_throughput.py [--sizes 1KiB,100KiB,1MiB,10MiB,100MiB,500MiB]
       python benches/parsl_throughput.py --quick       # make demo: 4 sizes, under a minute
       python benches/parsl_throughput.py --crossover   # where proxying starts to pay
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import parsl
from parsl.serialize import facade
from timing import fmt_time, publish

import byref
import byref.parsl

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.htex import local_config

SIZES = {
    "1KiB": 1 << 10,
    "16KiB": 16 << 10,
    "32KiB": 32 << 10,
    "64KiB": 64 << 10,
    "100KiB": 100 << 10,
    "256KiB": 256 << 10,
    "512KiB": 512 << 10,
    "1MiB": 1 << 20,
    "2MiB": 2 << 20,
    "10MiB": 10 << 20,
    "100MiB": 100 << 20,
    "500MiB": 500 << 20,
}
#: The full sweep (`make bench`), the short one (`make demo`), and the threshold's crossover.
FULL = "1KiB,100KiB,1MiB,10MiB,100MiB,500MiB"
QUICK = "100KiB,1MiB,10MiB,100MiB"
CROSSOVER = "16KiB,32KiB,64KiB,100KiB,256KiB,512KiB,1MiB,2MiB"
BATCH = 20
HERE = Path(__file__).resolve().parent


@parsl.python_app
def consume(x):
    import numpy as np

    return float(np.asarray(x).sum())


@dataclass
class Row:
    size: str
    mode: str
    single: float
    batch: float


def single_repeats(nbytes: int) -> int:
    return 9 if nbytes <= 2 << 20 else 5 if nbytes <= 10 << 20 else 3


class Progress:
    """One line per finished measurement, with elapsed time, on stderr."""

    def __init__(self, total: int) -> None:
        self.total, self.done, self.start = total, 0, time.monotonic()

    def step(self, what: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.start
        print(f"[{self.done:2}/{self.total}] {elapsed:6.1f} s  {what}", file=sys.stderr, flush=True)


@contextmanager
def only_serializer(serializer: Any) -> Iterator[None]:
    """Makes ``serializer`` Parsl's data serializer for the block, as install() does for byref."""
    saved = dict(facade.methods_for_data)
    for identifier, s in saved.items():
        facade.additional_methods_for_deserialization.setdefault(identifier, s)
    facade.methods_for_data.clear()
    facade.methods_for_data[serializer.identifier] = serializer
    try:
        yield
    finally:
        facade.methods_for_data.clear()
        facade.methods_for_data.update(saved)


def proxystore_mode(directory: Path, policy: byref.parsl.Policy) -> Callable[[], Any] | None:
    try:
        from parsl.serialize.proxystore import ProxyStoreSerializer
        from proxystore.connectors.file import FileConnector
        from proxystore.store import Store as ProxyStore
    except ImportError:
        return None
    store = ProxyStore("byref-bench", FileConnector(str(directory)), register=True)
    serializer = ProxyStoreSerializer(store=store, should_proxy=policy.should_proxy)
    return lambda: only_serializer(serializer)


@contextmanager
def plugin(store: byref.Store) -> Iterator[None]:
    byref.parsl.install(store)
    try:
        yield
    finally:
        byref.parsl.uninstall()


@contextmanager
def nothing() -> Iterator[None]:
    yield


def run_tasks(app: Callable[..., Any], arrays: list[np.ndarray]) -> float:
    """Seconds from the first submission to the last result."""
    t0 = time.perf_counter()
    futures = [app(a) for a in arrays]
    for f in futures:
        f.result()
    return time.perf_counter() - t0


def measure(app: Callable[..., Any], source: np.ndarray, n: int, batch: int) -> tuple[float, float]:
    slices = [source[i : i + n] for i in range(batch)]
    repeats = min(single_repeats(n * 8), batch)
    singles = [run_tasks(app, [slices[i]]) for i in range(repeats)]
    return statistics.median(singles), run_tasks(app, slices)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    how = parser.add_mutually_exclusive_group()
    how.add_argument("--sizes", default=FULL, help=f"comma-separated, of {', '.join(SIZES)}")
    how.add_argument(
        "--quick",
        action="store_true",
        help=f"make demo: {QUICK}, batches of 5; results to a temporary directory",
    )
    how.add_argument(
        "--crossover",
        action="store_true",
        help=f"where proxying starts to win: {CROSSOVER}, everything proxied, file and peer://",
    )
    args = parser.parse_args()
    names = QUICK if args.quick else CROSSOVER if args.crossover else args.sizes
    sizes = {name: SIZES[name] for name in names.split(",")}
    batch = 5 if args.quick else BATCH

    # Parsl's worker pool and interchange are scripts in the environment's bin directory.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    work = Path(tempfile.mkdtemp(prefix="byref-parsl-bench-"))
    store = byref.Store((work / "byref").as_uri())
    policy = byref.parsl.Policy()
    modes: dict[str, tuple[Callable[[], Any], Callable[..., Any]]] = {
        "inline": (nothing, consume),
    }
    if args.crossover:
        # Every argument proxied, whatever its size: where that starts to pay is the threshold.
        peer = byref.Store("peer://127.0.0.1", dir=str(work / "peer"))
        for name, where in (("file", store), ("peer://", peer)):
            decorate = byref.parsl.proxy_args(where, 0, release_on_completion=True)
            modes[f"decorator, {name}"] = (nothing, decorate(consume))
    else:
        decorate = byref.parsl.proxy_args(store, release_on_completion=True)
        modes["decorator"] = (nothing, decorate(consume))
        modes["plugin"] = (lambda: plugin(store), consume)
        ps = proxystore_mode(work / "proxystore", policy)
        if ps is not None:
            modes["proxystore"] = (ps, consume)

    print(f"Starting a HighThroughputExecutor (2 workers) in {work} ...", file=sys.stderr)
    parsl.load(local_config(work / "runinfo"))
    rows: list[Row] = []
    try:
        for setup, app in modes.values():  # workers import numpy, byref, proxystore once
            with setup():
                app(np.ones(1 << 18)).result()
        progress = Progress(len(sizes) * len(modes))
        for size, nbytes in sizes.items():
            n = nbytes // 8
            source = np.arange(n + batch, dtype=np.float64)
            for mode, (setup, app) in modes.items():
                with setup():
                    single, many = measure(app, source, n, batch)
                rows.append(Row(size, mode, single, many))
                progress.step(
                    f"{size:>7} {mode:<10} one task {fmt_time(single):>9}  "
                    f"{batch} tasks {fmt_time(many):>9}"
                )
                # byref's modes release what they stored; ProxyStore's proxies stay.
                shutil.rmtree(work / "proxystore", ignore_errors=True)
                (work / "proxystore").mkdir()
            del source
    finally:
        parsl.dfk().cleanup()
        parsl.clear()
        shutil.rmtree(work, ignore_errors=True)

    table = render(rows, sizes, batch)
    if args.quick:
        out = Path(tempfile.mkdtemp(prefix="byref-demo-"))
        print()
        print(table)
        plot(rows, sizes, batch, out / "parsl-throughput.png")
        print(f"plot: {out / 'parsl-throughput.png'}; the full sweep: make bench")
        return
    name = "RESULTS-parsl-crossover.md" if args.crossover else "RESULTS-parsl.md"
    command = "parsl_throughput.py --crossover" if args.crossover else "parsl_throughput.py"
    results = publish(
        table,
        name,
        "Parsl HighThroughputExecutor: large task arguments",
        f"`python benches/{command}` (in `make bench`)",
    )
    if not args.crossover:
        plot(rows, sizes, batch, HERE / "parsl-throughput.png")
        print(f"wrote {results} and {HERE / 'parsl-throughput.png'}")


def render(rows: list[Row], sizes: dict[str, int], batch: int) -> str:
    inline = {r.size: r for r in rows if r.mode == "inline"}
    lines = [
        f"{platform.node()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"Parsl {parsl.__version__}, byref {byref.__version__}; 2 workers on 127.0.0.1; "
        "byref and ProxyStore store in files on the same disk.",
        "One task: submission to result, median of a few. "
        f"{batch} tasks: all submitted at once, each on different data, until the last result. "
        "Speedup: inline time / mode time (higher is better).",
        "",
        f"| size | mode | one task | speedup | {batch} tasks | speedup | {batch}-task MB/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        base = inline[r.size]
        rate = batch * sizes[r.size] / r.batch / 1e6
        lines.append(
            f"| {r.size} | {r.mode} | {fmt_time(r.single)} | {base.single / r.single:.2f}x "
            f"| {fmt_time(r.batch)} | {base.batch / r.batch:.2f}x | {rate:,.1f} |"
        )
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], sizes: dict[str, int], batch: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for mode in dict.fromkeys(r.mode for r in rows):
        mine = [r for r in rows if r.mode == mode]
        x = [sizes[r.size] for r in mine]
        left.plot(x, [r.single for r in mine], marker="o", label=mode)
        right.plot(x, [batch * sizes[r.size] / r.batch / 1e6 for r in mine], marker="o", label=mode)
    for ax, title, unit in (
        (left, "One task, submission to result", "seconds"),
        (right, f"{batch} tasks at once: argument throughput", "MB/s"),
    ):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xticks(list(sizes.values()), list(sizes))
        ax.set_xlabel("argument size")
        ax.set_ylabel(unit)
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend()
    fig.suptitle("Parsl HighThroughputExecutor (2 workers): inline pickling vs byref vs ProxyStore")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
