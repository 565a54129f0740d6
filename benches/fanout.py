"""Fan-out: N worker processes on one machine resolving the same object at once.

1. For each store and N = 1, 2, 4, 8: N fresh processes unpickle the same proxy, resolve it
   and touch every page; the time is from the start signal until the last has finished, best
   of 3. Network stores (Redis, S3 on moto, the QUIC daemon) run once with no node cache (each
   process fetches its own copy) and once with it (``BYREF_NODE_CACHE`` in /dev/shm: one
   fetch for the machine). A ``peer://`` producer on the same host is mapped, not fetched
   (``LOCATE``). The file store, and ProxyStore's File and Redis connectors, run in the same
   run. Transfers and bytes sent come from the servers (the daemon's and the peer's status,
   Redis's ``INFO stats``); peak RSS and private memory (``RssAnon``) are per worker.
2. One same-host resolve of a 1 GB object: the file store, a ``peer://`` producer, and the
   daemon with its objects on disk (both mapped through ``LOCATE``).
3. Parsl (a local HighThroughputExecutor, 2 workers): 20 tasks taking the same 100 MB array,
   and 20 tasks each taking its own 10 MB array, with byref's plugin on the file store and on
   ``peer://``, and ProxyStore's FileConnector.

Writes the tables to benches/RESULTS-fanout.md and a plot to benches/fanout.png.
Usage: python benches/fanout.py [--size 200MB] [--workers 1,2,4,8] [--same-host-size 1000MB]
"""

from __future__ import annotations

import argparse
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("BYREF_CONFIG_DIR", tempfile.mkdtemp(prefix="byref-bench-config-"))
# moto's S3 takes any credentials; without them the client asks the cloud's metadata service.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")

import numpy as np
import parsl

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import fmt_time, publish

from tests.servers import MotoS3, QuicDaemon, RedisServer, requests_served

REPEAT = 3
HERE = Path(__file__).resolve().parent

# Waits for "go" on stdin, resolves, touches every page, prints when it finished and its
# peak RSS and private (anonymous) memory.
WORKER = """
import pickle, sys, time, numpy as np, byref
wire = sys.stdin.buffer.read(int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.buffer.readline()
proxy = pickle.loads(wire)
a = np.asarray(proxy)
a.view(np.uint8)[::4096].sum()
end = time.time()
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
kib = lambda field: int(status[field].split()[0]) * 1024
print(end, kib("VmHWM"), kib("RssAnon"), flush=True)
"""


@parsl.python_app
def consume(x):
    import numpy as np

    return float(np.asarray(x).sum())


@dataclass
class Run:
    seconds: float
    peak_rss: int  # the largest of the workers'
    private: int  # the largest of the workers'


def run_once(wire: bytes, n: int, env: dict[str, str]) -> Run:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, str(len(wire))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        for _ in range(n)
    ]
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(wire)
        p.stdin.flush()
    for p in procs:  # every interpreter up, imports done, waiting
        assert p.stdout is not None
        assert p.stdout.readline().strip() == b"ready"
    start = time.time()
    for p in procs:
        assert p.stdin is not None
        p.stdin.write(b"go\n")
        p.stdin.close()
    ends, peaks, private = [], [], []
    for p in procs:
        assert p.stdout is not None
        end, peak, anon = p.stdout.read().split()
        ends.append(float(end))
        peaks.append(int(peak))
        private.append(int(anon))
        assert p.wait() == 0
    return Run(max(ends) - start, max(peaks), max(private))


@dataclass
class Source:
    """A store to fan out from: the pickled proxy, and what its server counts (or None)."""

    name: str
    wire: bytes
    node_cache: bool  # whether to run with and without the node cache
    transfers: Callable[[], int] | None = None  # object transfers served so far
    sent: Callable[[], int] | None = None  # bytes the server sent so far


@dataclass
class Row:
    store: str
    cache: str
    workers: int
    run: Run
    transfers: int | None
    sent: int | None


def redis_sent(redis: RedisServer) -> int:
    info = redis.cli("INFO", "stats")
    line = next(x for x in info.splitlines() if x.startswith("total_net_output_bytes:"))
    return int(line.split(":")[1])


def proxystore_proxy(connector: object, array: np.ndarray) -> bytes:
    from proxystore.store import Store as ProxyStore

    store = ProxyStore(f"fanout-{id(connector)}", connector, register=True)
    return pickle.dumps(store.proxy(array))


def fan_out(sources: list[Source], counts: list[int], size: int) -> list[Row]:
    rows = []
    for source in sources:
        for cache in ("off", "node") if source.node_cache else ("-",):
            for n in counts:
                runs, transfers, sent = [], [], []
                for _ in range(REPEAT):
                    node = Path(tempfile.mkdtemp(prefix="byref-fanout-node-", dir="/dev/shm"))
                    env = {**os.environ, "BYREF_CACHE_BYTES": "0", "BYREF_NODE_CACHE": "off"}
                    if cache == "node":
                        env["BYREF_NODE_CACHE"] = str(node / "cache")
                    t0 = source.transfers() if source.transfers else 0
                    s0 = source.sent() if source.sent else 0
                    runs.append(run_once(source.wire, n, env))
                    if source.transfers:
                        transfers.append(source.transfers() - t0)
                    if source.sent:
                        sent.append(source.sent() - s0)
                    shutil.rmtree(node, ignore_errors=True)
                best = min(runs, key=lambda r: r.seconds)
                rows.append(
                    Row(
                        source.name,
                        cache,
                        n,
                        best,
                        min(transfers) if transfers else None,
                        min(sent) if sent else None,
                    )
                )
                print(rows[-1], flush=True)
    return rows


def same_host(size: int) -> list[tuple[str, float]]:
    """One worker resolving a `size`-byte object from stores on its own host, best of 3."""
    array = np.random.default_rng(1).integers(0, 255, size, dtype=np.uint8)
    work = Path(tempfile.mkdtemp(prefix="byref-same-host-"))
    daemon = QuicDaemon(work / "daemon", "--memory", "0")
    shm = Path(tempfile.mkdtemp(prefix="byref-same-host-", dir="/dev/shm"))
    results = []
    try:
        stores = [
            (f"file store in {work.parent}", byref.Store((work / "files").as_uri())),
            ("file store in /dev/shm", byref.Store((shm / "files").as_uri())),
            ("peer://, its default: files in /dev/shm", byref.Store("peer://127.0.0.1")),
            (
                f"peer://?memory=0&dir= in {work.parent}",
                byref.Store(f"peer://127.0.0.1?memory=0&dir={work / 'peer'}"),
            ),
            (f"QUIC daemon, disk tier in {work.parent}", byref.Store(daemon.url)),
        ]
        env = {**os.environ, "BYREF_CACHE_BYTES": "0", "BYREF_NODE_CACHE": "off"}
        for name, store in stores:
            wire = pickle.dumps(store.proxy(array))
            best = min(run_once(wire, 1, env).seconds for _ in range(REPEAT))
            results.append((name, best))
            print(name, fmt_time(best), flush=True)
        served = requests_served(daemon.url)
        assert served["get"] == 0, f"the daemon sent the object: {served}"
    finally:
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)
    return results


def parsl_rows() -> list[tuple[str, str, float]]:
    """(mode, workload, best of 3) for the Parsl workloads."""
    from parsl_throughput import BATCH, plugin, proxystore_mode, run_tasks

    from tests.htex import local_config

    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    work = Path(tempfile.mkdtemp(prefix="byref-fanout-parsl-"))
    file_store = byref.Store((work / "byref").as_uri())
    peer = byref.Store("peer://127.0.0.1")
    modes = {
        "byref plugin, file store": lambda: plugin(file_store),
        "byref plugin, peer://": lambda: plugin(peer),
    }
    ps = proxystore_mode(work / "proxystore", byref.parsl.Policy())
    if ps is not None:
        modes["ProxyStore FileConnector"] = ps
    shared = np.random.default_rng(2).random(100_000_000 // 8)
    source = np.random.default_rng(3).random(10_000_000 // 8 + BATCH)
    batch = [source[i : i + 10_000_000 // 8] for i in range(BATCH)]
    workloads = {
        f"{BATCH} tasks, one shared 100 MB array": [shared] * BATCH,
        f"{BATCH} tasks, each its own 10 MB array": batch,
    }
    rows = []
    parsl.load(local_config(work / "runinfo"))
    try:
        for mode, setup in modes.items():
            with setup():
                consume(np.ones(1 << 18)).result()  # workers import everything once
                for workload, arrays in workloads.items():
                    best = min(run_tasks(consume, arrays) for _ in range(REPEAT))
                    rows.append((mode, workload, best))
                    print(mode, workload, fmt_time(best), flush=True)
    finally:
        parsl.dfk().cleanup()
        parsl.clear()
        shutil.rmtree(work, ignore_errors=True)
    return rows


def mib(n: int | None) -> str:
    return "-" if n is None else f"{n / 2**20:,.0f} MiB"


def render(
    rows: list[Row],
    same: list[tuple[str, float]],
    parsl_results: list[tuple[str, str, float]],
    args: argparse.Namespace,
) -> str:
    single = {(r.store, r.cache): r.run.seconds for r in rows if r.workers == 1}
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, byref {byref.__version__}.",
        "",
        f"## {args.size} fan-out",
        "",
        f"One {args.size} uint8 array; fresh worker processes; time from the start signal "
        f"until the last has resolved it and touched every page; best of {REPEAT}; byref's "
        "per-process cache off. Transfers: GETs the daemon or peer served; bytes sent: "
        "Redis's `total_net_output_bytes`, or GETs times the object's size. Peak RSS counts "
        "the mapped node-cache pages each worker touched (shared by all of them); private "
        "is the worker's anonymous memory at the end.",
        "",
        "| store | node cache | workers | all resolved | vs 1 worker | transfers "
        "| bytes sent | peak RSS / worker | private / worker |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = r.run.seconds / single[(r.store, r.cache)]
        transfers = "-" if r.transfers is None else str(r.transfers)
        lines.append(
            f"| {r.store} | {r.cache} | {r.workers} | {fmt_time(r.run.seconds)} | {ratio:.2f}x "
            f"| {transfers} | {mib(r.sent)} | {mib(r.run.peak_rss)} | {mib(r.run.private)} |"
        )
    base = same[0][1]
    lines += [
        "",
        f"## One same-host resolve of {args.same_host_size}",
        "",
        f"One worker process, best of {REPEAT}, node cache off; the daemon's objects on disk "
        "(`--memory 0`). `peer://` and the daemon are mapped through `LOCATE` (no GET). "
        "What differs is the filesystem: this kernel maps tmpfs (`/dev/shm`, 4 KiB pages, "
        "`shmem_enabled` never) page by page, and ext4's large folios many pages at a time.",
        "",
        "| store | resolved | vs file store |",
        "|---|---|---|",
        *(f"| {name} | {fmt_time(t)} | {t / base:.2f}x |" for name, t in same),
    ]
    if parsl_results:
        lines += [
            "",
            "## Parsl",
            "",
            f"A local HighThroughputExecutor with 2 workers; all tasks submitted at once, until "
            f"the last result; best of {REPEAT}.",
            "",
            "| mode | workload | all results |",
            "|---|---|---|",
            *(f"| {mode} | {workload} | {fmt_time(t)} |" for mode, workload, t in parsl_results),
        ]
    return "\n".join(lines) + "\n"


def plot(rows: list[Row], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key in dict.fromkeys((r.store, r.cache) for r in rows):
        mine = [r for r in rows if (r.store, r.cache) == key]
        label = key[0] if key[1] == "-" else f"{key[0]}, node cache {key[1]}"
        style = "--" if key[1] == "off" else "-"
        ax.plot([r.workers for r in mine], [r.run.seconds for r in mine], style, marker="o",
                label=label)  # fmt: skip
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("worker processes resolving the object")
    ax.set_ylabel("seconds until all resolved")
    ax.set_title("Fan-out on one machine: one object, N workers")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="200MB")
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--same-host-size", default="1000MB")
    parser.add_argument("--no-parsl", action="store_true")
    args = parser.parse_args()
    size = int(args.size.removesuffix("MB")) * 1_000_000
    counts = [int(n) for n in args.workers.split(",")]
    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)

    work = Path(tempfile.mkdtemp(prefix="byref-fanout-"))
    redis = RedisServer()
    moto = MotoS3()
    daemon = QuicDaemon(work / "daemon", "--memory", "4GiB")
    try:
        from proxystore.connectors.file import FileConnector
        from proxystore.connectors.redis import RedisConnector

        proxystore = [
            ("ProxyStore File", FileConnector(str(work / "proxystore"))),
            ("ProxyStore Redis", RedisConnector("127.0.0.1", redis.port)),
        ]
    except ImportError:
        proxystore = []
    peer = byref.Store("peer://127.0.0.1")

    def wire(url_or_store: str | byref.Store) -> bytes:
        store = url_or_store if isinstance(url_or_store, byref.Store) else byref.Store(url_or_store)
        return pickle.dumps(store.proxy(array))

    try:
        peer_wire = wire(peer)
        peer_url = byref.handle_of(pickle.loads(peer_wire)).url
        sources = [
            Source("file store", wire((work / "files").as_uri()), node_cache=False),
            Source("Redis", wire(redis.url), True, sent=lambda: redis_sent(redis)),
            Source("S3 (moto)", wire(moto.url("fanout")), True),
            Source(
                "QUIC daemon",
                wire(daemon.url),
                True,
                transfers=daemon.gets_served,
                sent=lambda: daemon.gets_served() * size,
            ),
            Source(
                "peer:// (same host)",
                peer_wire,
                False,
                transfers=lambda: requests_served(peer_url)["get"],
                sent=lambda: requests_served(peer_url)["get"] * size,
            ),
            *(Source(name, proxystore_proxy(c, array), False) for name, c in proxystore),
        ]
        rows = fan_out(sources, counts, size)
    finally:
        redis.stop()
        moto.stop()
        daemon.stop()
        shutil.rmtree(work, ignore_errors=True)

    same = same_host(int(args.same_host_size.removesuffix("MB")) * 1_000_000)
    parsl_results = [] if args.no_parsl else parsl_rows()
    publish(
        render(rows, same, parsl_results, args),
        "RESULTS-fanout.md",
        "Fan-out: many workers on one machine resolving one object",
        "`python benches/fanout.py`",
    )
    plot(rows, HERE / "fanout.png")


if __name__ == "__main__":
    main()
