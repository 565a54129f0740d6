"""Parsl on a cluster: the login node and compute nodes of ``tests/cluster.py``, for each store.

The submitting script, HTEX's interchanges, ``byref serve`` and ``redis-server`` run on the
login node (this network namespace); ``--nodes`` compute nodes (network namespaces on a
bridge, links of ``--mtu`` bytes, each with its own ``/dev/shm`` and hostname, the filesystem
shared) run a worker pool of 2 each. The workloads of ``tests/cluster_workloads.py`` —
``broadcast`` (one array to 8 tasks over the nodes), ``distinct`` (8 tasks, each its own
quarter-size array), ``chain`` (a task's result used by a task on the other node), ``one``
(the chain's baseline: one argument to one remote task) and ``small`` (200 tasks of size/1000
bytes) — run inline, then with byref's plugin and decorator over each store (the daemon,
Redis, a file store on the shared filesystem), then ProxyStore over Redis (Parsl's
``ProxyStoreSerializer``) if it is installed. Each time is the median of ``--repeat`` runs,
each on new data; the bytes are what the nodes' links carried in the first run, from stores
and interchange alike. Writes ``benches/RESULTS-cluster.md`` and ``benches/cluster.png``.

Needs root (namespaces). Usage:
    python benches/cluster.py [--size 300MB] [--mtu 1500,9000] [--repeat 3] [--nodes 2]
    python benches/cluster.py --crossover     # where proxying starts to win, per store
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from parsl_throughput import only_serializer
from timing import publish

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.cluster import Cluster
from tests.cluster_workloads import WORKLOADS, Apps, run, sending
from tests.htex import loaded
from tests.servers import QuicDaemon, RedisServer

HERE = Path(__file__).resolve().parent
#: Distinct data for every run: keys and node caches never serve a later run from an earlier.
_seeds = itertools.count(1)


@dataclass
class Row:
    mtu: int
    size: int
    label: str
    seconds: dict[str, float] = field(default_factory=dict)
    bytes: dict[str, int] = field(default_factory=dict)


@contextmanager
def proxystore_over(redis: RedisServer, threshold: int | None) -> Iterator[bool]:
    """Parsl's ProxyStore serializer over ``redis`` (what byref proxies, it proxies), if
    ProxyStore is installed; yields whether it is."""
    try:
        from parsl.serialize.proxystore import ProxyStoreSerializer
        from proxystore.connectors.redis import RedisConnector
        from proxystore.store import Store as ProxyStore
    except ImportError:
        yield False
        return
    policy = byref.parsl.arguments.parsl_policy(threshold or byref.Store(redis.url).proxy_threshold)
    store = ProxyStore("byref-cluster", RedisConnector(redis.host, redis.port), register=True)
    serializer = ProxyStoreSerializer(store=store, should_proxy=policy.should_proxy)
    try:
        with only_serializer(serializer):
            yield True
    finally:
        store.close()


def measure(
    cluster: Cluster, apps: Apps, size: int, workloads: list[str], repeat: int, row: Row
) -> None:
    nodes = range(1, len(cluster.names) + 1)
    run("small", 64 << 10, apps, next(_seeds))  # workers import numpy and byref first
    for workload in workloads:
        times = []
        for i in range(repeat):
            before = sum(cluster.bytes_to(n) for n in nodes)
            times.append(run(workload, size, apps, next(_seeds)))
            if i == 0:
                row.bytes[workload] = sum(cluster.bytes_to(n) for n in nodes) - before
        row.seconds[workload] = statistics.median(times)
        print(f"  {row.label:26} {workload:10} {row.seconds[workload]:8.2f} s  "
              f"{row.bytes[workload] / 1e6:9.1f} MB to nodes", flush=True)  # fmt: skip


def one_mtu(args: argparse.Namespace, mtu: int, work: Path) -> list[Row]:
    cluster = Cluster(nodes=args.nodes, mtu=mtu, prefix="10.216")
    daemon = QuicDaemon(work / f"daemon-{mtu}", host=cluster.login)
    redis = RedisServer(host=cluster.login)
    stores = {
        "daemon": byref.Store(daemon.url),
        "redis": byref.Store(redis.url),
        "file": byref.Store(f"file://{work}/file-{mtu}"),
    }
    rows: list[Row] = []
    try:
        with loaded(work / f"parsl-{mtu}", executors=cluster.executors()):
            combos: list[tuple[str, str, byref.Store | None]] = [("inline", "inline", None)]
            combos += [
                (f"byref {name} {mode}", mode, store)
                for name, store in stores.items()
                if name in args.stores
                for mode in ("plugin", "decorator")
            ]
            combos = [c for c in combos if c[1] in args.modes]
            for size, (label, mode, store) in itertools.product(args.size, combos):
                row = Row(mtu, size, label)
                apps = Apps(args.nodes, mode, store, args.threshold)
                with sending(mode, store, args.threshold):
                    repeat = args.inline_repeat if mode == "inline" else args.repeat
                    measure(cluster, apps, size, args.workloads, repeat, row)
                rows.append(row)
            with proxystore_over(redis, args.threshold) as installed:
                installed = installed and "proxystore" in args.modes
                for size in args.size if installed else ():
                    row = Row(mtu, size, "ProxyStore redis")
                    # Arguments only: results go back by value, as ProxyStore sends them.
                    workloads = [w for w in args.workloads if w != "chain"]
                    apps = Apps(args.nodes, "inline", None)
                    measure(cluster, apps, size, workloads, args.repeat, row)
                    rows.append(row)
    finally:
        daemon.stop()
        redis.stop()
        cluster.close()
    return rows


def table(rows: list[Row], workloads: list[str]) -> str:
    inline = {(r.mtu, r.size): r for r in rows if r.label == "inline"}
    no_baseline = Row(0, 0, "none")
    head = "| MTU | size | mode | " + " | ".join(workloads) + " |"
    lines = [head, "|" + "---|" * (len(workloads) + 3)]
    for r in rows:
        cells = []
        for w in workloads:
            if w not in r.seconds:
                cells.append("—")
                continue
            base = inline.get((r.mtu, r.size), no_baseline).seconds.get(w)
            ratio = f" ({base / r.seconds[w]:.1f}x)" if base and r.label != "inline" else ""
            cells.append(f"{r.seconds[w]:.2f} s{ratio}, {r.bytes[w] / 1e6:.0f} MB")
        lines.append(f"| {r.mtu} | {r.size / 1e6:.0f} MB | {r.label} | " + " | ".join(cells) + " |")
    note = (
        "\nEach cell: median seconds (speed-up over inline), then the bytes the nodes' links "
        "carried in the first run (stores and interchange; a file store's bytes go through "
        "the shared filesystem, here the local disk, and are not counted). `size` is the "
        "workload's: `small` passes size/1000 bytes to each of its 200 tasks."
    )
    return "\n".join(lines) + "\n" + note


def plot(rows: list[Row], workloads: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mtus = sorted({r.mtu for r in rows})
    fig, axes = plt.subplots(1, len(mtus), figsize=(7 * len(mtus), 4.5), squeeze=False)
    for ax, mtu in zip(axes[0], mtus, strict=True):
        mine = [r for r in rows if r.mtu == mtu]
        width = 0.8 / len(mine)
        for i, r in enumerate(mine):
            xs = [j + i * width for j, w in enumerate(workloads) if w in r.seconds]
            ax.bar(xs, [r.seconds[w] for w in workloads if w in r.seconds], width, label=r.label)
        ax.set_xticks([j + 0.4 - width / 2 for j in range(len(workloads))], workloads)
        ax.set_yscale("log")
        ax.set_ylabel("seconds (log)")
        ax.set_title(f"MTU {mtu}")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="300MB", help="sizes, comma-separated")
    parser.add_argument("--mtu", default="1500,9000")
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--inline-repeat", type=int, default=1,
                        help="runs of the inline baseline (slow: 10-35x the others)")  # fmt: skip
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--stores", default="daemon,redis,file")
    parser.add_argument("--modes", default="inline,plugin,decorator,proxystore")
    parser.add_argument("--out", default="RESULTS-cluster.md")
    parser.add_argument("--threshold", type=byref._native.parse_size, default=None,
                        help="proxy buffers from this size (default: the store's)")  # fmt: skip
    parser.add_argument("--crossover", action="store_true",
                        help="where proxying starts to win: small tasks of 300 kB-2 MB, all "
                        "proxied, MTU 1500 (RESULTS-cluster-crossover.md)")  # fmt: skip
    args = parser.parse_args()
    if args.crossover:
        args.size, args.workloads, args.mtu = "300MB,600MB,1GB,2GB", "small", "1500"
        args.threshold, args.out, args.inline_repeat = 1, "RESULTS-cluster-crossover.md", 3
    args.size = [byref._native.parse_size(s) for s in args.size.split(",")]
    args.workloads = args.workloads.split(",")
    args.stores = args.stores.split(",")
    args.modes = args.modes.split(",")
    started = time.monotonic()
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="byref-cluster-") as tmp:
        for mtu in (int(m) for m in args.mtu.split(",")):
            rows += one_mtu(args, mtu, Path(tmp))
    text = table(rows, args.workloads)
    command = "`python benches/cluster.py " + " ".join(sys.argv[1:]) + "`"
    publish(text, args.out, "Parsl on a cluster (login node + compute nodes)", command)
    if not args.crossover:
        plot(rows, args.workloads, HERE / "cluster.png")
    print(f"\n{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
