"""byref over QUIC — its store daemon and a peer — against byref on Redis, in one run.

Large objects: ``put``/``get`` of a uint8 array on each store (byref's cache off, best of 3).
The daemon is ``byref serve`` in its own process, as an admin runs it. The peer is this
process (``peer://127.0.0.1``): its put is a copy into its own files in /dev/shm (its default
store; before issue 13, into its memory), and its get (by key, so never mapped) is timed
through a second, real QUIC client in this process, which is what a worker does. Small
objects: 1 KiB gets per second, one at a time and from 64 threads at once (the GIL is
released while each waits). Everything on loopback; client and server share this machine's
cores.

Writes the tables to benches/RESULTS-quic.md.
Usage: python benches/quic.py [--sizes 10MB,100MB,1GB] [--small 5000]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ["BYREF_CACHE_BYTES"] = "0"  # measure the transport, not the caches
os.environ["BYREF_NODE_CACHE"] = "off"
# The daemon's token file goes here, not into the user's home.
os.environ.setdefault("BYREF_CONFIG_DIR", tempfile.mkdtemp(prefix="byref-bench-config-"))

import numpy as np

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import best, fmt_time, publish

from tests.servers import QuicDaemon, RedisServer

SIZES = {"10MB": 10 << 20, "100MB": 100 << 20, "1GB": 1 << 30}
REPEAT = 3
THREADS = 64


def gbps(n: int, s: float) -> str:
    return f"{n / s / 1e9:.2f} GB/s"


def put_get(writer: byref.Store, reader: byref.Store, n: int) -> tuple[float, float]:
    array = np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8)
    key = writer.put(array)
    writer.evict(key)
    t_put = best(lambda: writer.put(array), REPEAT, between=lambda: writer.evict(key))
    key = writer.put(array)
    assert np.array_equal(reader.get(key), array)
    t_get = best(lambda: reader.get(key), REPEAT)
    writer.evict(key)
    return t_put, t_get


def small_gets(writer: byref.Store, reader: byref.Store, count: int) -> tuple[float, float]:
    """1 KiB gets per second: sequential, then from THREADS threads."""
    keys = [writer.put(np.full(1024, i % 251, dtype=np.uint8)) for i in range(256)]
    for key in keys:
        reader.get(key)  # connections open, code paths warm

    def run(key: str) -> None:
        reader.get(key)

    t0 = time.perf_counter()
    for i in range(count):
        run(keys[i % len(keys)])
    sequential = count / (time.perf_counter() - t0)
    with ThreadPoolExecutor(THREADS) as pool:
        t0 = time.perf_counter()
        list(pool.map(run, (keys[i % len(keys)] for i in range(count * 4))))
        parallel = count * 4 / (time.perf_counter() - t0)
    for key in keys:
        writer.evict(key)
    return sequential, parallel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10MB,100MB,1GB")
    parser.add_argument("--small", type=int, default=5000, help="sequential small gets")
    args = parser.parse_args()

    redis = RedisServer("--proto-max-bulk-len", "2gb", "--client-query-buffer-limit", "2gb")
    data = Path(tempfile.mkdtemp(prefix="byref-bench-daemon-"))
    daemon = QuicDaemon(data, "--memory", "4GiB")
    try:
        on_redis = byref.Store(redis.url, prefix=f"{uuid.uuid4().hex}:")
        on_daemon = byref.Store(daemon.url)
        peer = byref.Store("peer://127.0.0.1")
        # A URL this process has not opened gets its own QUIC client, even for its own peer.
        from_peer = byref.Store(peer.url, connect_timeout=10)
        stores = {
            "Redis (byref)": (on_redis, on_redis),
            "QUIC daemon": (on_daemon, on_daemon),
            "QUIC peer": (peer, from_peer),
        }
        large: dict[str, list[tuple[float, float]]] = {name: [] for name in stores}
        for label in args.sizes.split(","):
            for name, (writer, reader) in stores.items():
                print(f"{name} {label}...", flush=True)
                large[name].append(put_get(writer, reader, SIZES[label]))
        small = {}
        for name, (writer, reader) in stores.items():
            print(f"{name} small gets...", flush=True)
            small[name] = small_gets(writer, reader, args.small)
    finally:
        redis.stop()
        daemon.stop()

    labels = args.sizes.split(",")
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, byref {byref.__version__}; "
        f"servers on loopback, sharing the cores with the client; best of {REPEAT}; "
        "byref's cache off.",
        "",
        "Large objects (a uint8 array). Speed-up: Redis time / this store's time. A peer's put "
        "is a copy into its own files in /dev/shm; its get goes over QUIC.",
        "",
        "| size | store | put | put speed-up | get | get speed-up |",
        "|---|---|---|---|---|---|",
    ]
    base = large["Redis (byref)"]
    for i, label in enumerate(labels):
        n = SIZES[label]
        for name, rows in large.items():
            put, get = rows[i]
            lines.append(
                f"| {label} | {name} | {fmt_time(put)} ({gbps(n, put)}) | {base[i][0] / put:.2f}x "
                f"| {fmt_time(get)} ({gbps(n, get)}) | {base[i][1] / get:.2f}x |"
            )
    lines += [
        "",
        f"1 KiB gets per second from Python: one at a time, and {THREADS} threads at once.",
        "",
        f"| store | sequential | {THREADS} threads | {THREADS} threads vs Redis |",
        "|---|---|---|---|",
    ]
    for name, (sequential, parallel) in small.items():
        lines.append(
            f"| {name} | {sequential:,.0f}/s | {parallel:,.0f}/s "
            f"| {parallel / small['Redis (byref)'][1]:.2f}x |"
        )
    out = publish(
        "\n".join(lines),
        "RESULTS-quic.md",
        "QUIC benchmark",
        "`python benches/quic.py` (`make bench`)",
    )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
