"""byref over QUIC — its store daemon and a peer — against byref on Redis, on the same path.

Three paths: loopback, and two "hosts" (network namespaces joined by a veth pair) at MTU 1500
and at MTU 9000. On each, the servers run on the server side (redis-server, `byref serve`,
and a producer process holding a `peer://` store), and the client runs on the other side.

Large objects: ``put``/``get`` of a uint8 array, best of 3, byref's caches off. Redis and the
daemon are put to and got from by the client; the peer's objects are put by its producer
(into its own files in /dev/shm) and got by the client over QUIC. For the largest size, the
CPU time both ends spent per GB (the client process, and the server process) says where the
time goes. Small objects: 1 KiB gets per second, one at a time and from 64 threads at once.

The veth paths need root and iproute2; without them they are left out, with the reason.
Writes the tables to benches/RESULTS-quic.md.
Usage: python benches/quic.py [--sizes 10MB,100MB,1GB] [--small 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ["BYREF_CACHE_BYTES"] = "0"  # measure the transport, not the caches
os.environ["BYREF_NODE_CACHE"] = "off"
# The daemon's token file goes here, not into the user's home; every namespace sees it.
os.environ.setdefault("BYREF_CONFIG_DIR", tempfile.mkdtemp(prefix="byref-bench-config-"))

import numpy as np

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import best, fmt_time, publish

from tests.servers import QuicDaemon, RedisServer, VethPair, in_netns

SIZES = {"10MB": 10 << 20, "100MB": 100 << 20, "1GB": 1 << 30}
REPEAT = 3
THREADS = 64
STORES = ("Redis (byref)", "QUIC daemon", "QUIC peer")

# The peer's producer: puts each size (timed, best of REPEAT), prints where they are, and
# serves them until its stdin closes.
PRODUCER = """
import json, os, sys, time, numpy as np, byref
store, sizes, repeat = byref.Store(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3])
keys, puts = {}, {}
for label, n in sizes.items():
    array = np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        store.evict(store.put(array))
        times.append(time.perf_counter() - t0)
    keys[label], puts[label] = store.put(array), min(times)
small = [store.put(np.full(1024, i % 251, dtype=np.uint8)) for i in range(256)]
out = {"url": store.url, "keys": keys, "puts": puts, "small": small, "pid": os.getpid()}
print(json.dumps(out), flush=True)
sys.stdin.readline()
"""


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (all its threads)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_cpu(fn, server_pid: int) -> tuple[float, float, float]:
    """Runs `fn` (`REPEAT` times); returns the best wall time, and this process's and the
    server's CPU seconds per run."""
    client0, server0 = time.process_time(), cpu_seconds(server_pid)
    wall = best(fn, REPEAT)
    client = (time.process_time() - client0) / REPEAT
    return wall, client, (cpu_seconds(server_pid) - server0) / REPEAT


def small_gets(store: byref.Store, keys: list[str], count: int) -> tuple[float, float]:
    """1 KiB gets per second: sequential, then from THREADS threads."""
    for key in keys:
        store.get(key)  # connections open, code paths warm
    t0 = time.perf_counter()
    for i in range(count):
        store.get(keys[i % len(keys)])
    sequential = count / (time.perf_counter() - t0)
    with ThreadPoolExecutor(THREADS) as pool:
        t0 = time.perf_counter()
        list(pool.map(store.get, (keys[i % len(keys)] for i in range(count * 4))))
        parallel = count * 4 / (time.perf_counter() - t0)
    return sequential, parallel


def client(spec: dict) -> dict:
    """The client side of one path (run in the client's namespace): every measurement."""
    return {
        name: measure(name, server, spec["sizes"], spec["small"])
        for name, server in spec["servers"].items()
    }


def measure(name: str, server: dict, sizes: dict[str, int], small: int) -> dict:
    """Puts and gets of every size, and small gets, on one server."""
    store = byref.Store(server["url"])
    rows = {}
    for label, n in sizes.items():
        if name == "QUIC peer":
            key = server["keys"][label]
            put = (server["puts"][label], None, None)
        else:
            array = np.random.default_rng(n).integers(0, 255, n, dtype=np.uint8)
            store.evict(store.put(array))
            put = timed_cpu(lambda array=array: store.evict(store.put(array)), server["pid"])
            key = store.put(array)
            del array
        assert len(store.get(key)) == n
        get = timed_cpu(lambda key=key: store.get(key), server["pid"])
        rows[label] = {"put": put, "get": get}
    if name == "QUIC peer":
        keys = server["small"]
    else:
        keys = [store.put(np.full(1024, i % 251, dtype=np.uint8)) for i in range(256)]
    return {"large": rows, "small": small_gets(store, keys, small)}


def run_path(mtu: int | None, sizes: dict[str, int], small: int) -> dict:
    """Starts the servers on the server side of the path (loopback if `mtu` is None), runs
    the client on the other, and stops everything."""
    pair = VethPair(mtu) if mtu else None
    host = pair.server_ip if pair else "127.0.0.1"
    server_ns = pair.server if pair else None
    started = []
    try:
        redis = RedisServer(
            "--proto-max-bulk-len", "2gb", "--client-query-buffer-limit", "2gb",
            host=host, netns=server_ns,
        )  # fmt: skip
        started.append(redis.stop)
        data = Path(tempfile.mkdtemp(prefix="byref-bench-daemon-"))
        daemon = QuicDaemon(data, "--memory", "4GiB", host=host, netns=server_ns)
        started.append(daemon.stop)
        producer = subprocess.Popen(
            [*in_netns(server_ns), sys.executable, "-c", PRODUCER, f"peer://{host}",
             json.dumps(sizes), str(REPEAT)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        started.append(lambda: (producer.communicate(""), producer.wait()))
        assert producer.stdout is not None
        peer = json.loads(producer.stdout.readline())
        servers = {
            "Redis (byref)": {"url": redis.url, "pid": redis.proc.pid},
            "QUIC daemon": {"url": daemon.url, "pid": daemon.process.pid},
            "QUIC peer": peer,
        }  # fmt: skip
        spec = {"sizes": sizes, "small": small, "servers": servers}
        done = subprocess.run(
            [*in_netns(pair.client if pair else None), sys.executable, __file__,
             "--client", json.dumps(spec)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"the client failed:\n{done.stderr}")
        return json.loads(done.stdout.splitlines()[-1])
    finally:
        for stop in reversed(started):
            stop()
        if pair:
            pair.close()


def gbps(n: int, s: float) -> str:
    return f"{n / s / 1e9:.2f} GB/s"


def table(label: str, results: dict, sizes: dict[str, int]) -> list[str]:
    lines = [
        f"### {label}",
        "",
        "| size | store | put | put vs Redis | get | get vs Redis |",
        "|---|---|---|---|---|---|",
    ]
    base = results["Redis (byref)"]["large"]
    for size, n in sizes.items():
        for name in STORES:
            put, get = (results[name]["large"][size][op][0] for op in ("put", "get"))
            lines.append(
                f"| {size} | {name} | {fmt_time(put)} ({gbps(n, put)}) "
                f"| {base[size]['put'][0] / put:.2f}x | {fmt_time(get)} ({gbps(n, get)}) "
                f"| {base[size]['get'][0] / get:.2f}x |"
            )
    largest, n = list(sizes.items())[-1]
    lines += [
        "",
        f"CPU seconds per GB moved ({largest}; client process + server process):",
        "",
        "| store | put: client + server | get: client + server |",
        "|---|---|---|",
    ]
    for name in STORES:
        cells = []
        for op in ("put", "get"):
            _, client_s, server_s = results[name]["large"][largest][op]
            if client_s is None:
                cells.append("(in the producer)")
            else:
                per_gb = 1e9 / n
                cells.append(
                    f"{client_s * per_gb:.2f} + {server_s * per_gb:.2f} "
                    f"= {(client_s + server_s) * per_gb:.2f}"
                )
        lines.append(f"| {name} | {cells[0]} | {cells[1]} |")
    lines += [
        "",
        f"1 KiB gets per second: one at a time, and {THREADS} threads at once.",
        "",
        f"| store | sequential | {THREADS} threads | {THREADS} threads vs Redis |",
        "|---|---|---|---|",
    ]
    redis_parallel = results["Redis (byref)"]["small"][1]
    for name in STORES:
        sequential, parallel = results[name]["small"]
        lines.append(
            f"| {name} | {sequential:,.0f}/s | {parallel:,.0f}/s "
            f"| {parallel / redis_parallel:.2f}x |"
        )
    return [*lines, ""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10MB,100MB,1GB")
    parser.add_argument("--small", type=int, default=5000, help="sequential small gets")
    parser.add_argument("--client", help=argparse.SUPPRESS)  # the client side of one path
    args = parser.parse_args()
    if args.client:
        print(json.dumps(client(json.loads(args.client))))
        return

    sizes = {label: SIZES[label] for label in args.sizes.split(",")}
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, byref {byref.__version__}; "
        f"best of {REPEAT}; byref's caches off. Client and servers share the machine's cores "
        "on every path. Speed-up: Redis time / this store's time. A peer's put is its "
        "producer's copy into its own files in /dev/shm; its get goes over QUIC.",
        "",
    ]
    for label, mtu in (
        ("Loopback", None),
        ("Two namespaces, veth MTU 1500", 1500),
        ("Two namespaces, veth MTU 9000", 9000),
    ):
        print(f"{label}...", flush=True)
        t0 = time.perf_counter()
        try:
            results = run_path(mtu, sizes, args.small)
        except OSError as e:
            lines += [f"### {label}", "", f"Not measured: {e}", ""]
            continue
        lines += table(label, results, sizes)
        print(f"  {time.perf_counter() - t0:.0f} s", flush=True)
    out = publish(
        "\n".join(lines),
        "RESULTS-quic.md",
        "QUIC benchmark",
        "`python benches/quic.py` (`make bench`)",
    )
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
