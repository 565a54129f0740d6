"""byref's round trip against inline pickling, in one run.

For each array size: inline ``pickle.dumps``/``loads`` (protocol 5, data in the stream) plus
a sum, against byref's round trip — proxy, pickle the proxy, unpickle it in a fresh process,
resolve and sum there — and, as the zero-copy yardstick, ``np.load(mmap_mode="r")`` plus a
sum in a fresh process. Then a small object's whole round trip in-process, on byref's file
store (on the project's disk and on tmpfs), memory and Redis stores and ProxyStore's
FileConnector (both disks), in the same run: time per round trip, and the filesystem
operations it makes, counted with strace (benches/fsops.py).

Puts are timed once per size; resolves are the best of three fresh processes. Prints the
tables and writes them to benches/RESULTS.md.
Usage: python benches/roundtrip.py [--sizes 1KB,1MB,100MB,1GB] [--store URL] [--small-n N]
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
from pathlib import Path

import fsops
import numpy as np
from timing import best, fmt_time, publish

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import RedisServer

SIZES = {"1KB": 1 << 10, "1MB": 1 << 20, "100MB": 100 << 20, "1GB": 1 << 30}

CHILD = r"""
import os, pickle, sys, time
import numpy as np
import byref
try:
    import proxystore.store  # imported before the clock starts, as byref is
except ImportError:
    pass
mode, arg = sys.argv[1], sys.argv[2]
wire = sys.stdin.buffer.read()
t0 = time.perf_counter()
if mode == "proxy":
    x = pickle.loads(wire)
    total = float(x.sum())
else:
    total = float(np.load(arg, mmap_mode="r").sum())
elapsed = time.perf_counter() - t0
# VmHWM, not ru_maxrss: Linux carries ru_maxrss across execve, so it would report the
# benchmark parent's footprint (which holds the array) instead of this process's.
with open("/proc/self/status") as status:
    hwm = next(int(line.split()[1]) * 1024 for line in status if line.startswith("VmHWM"))
print(elapsed, hwm, total)
"""


RESOLVES = 3


def run_child(mode: str, arg: str, wire: bytes = b"") -> tuple[float, int, float]:
    """Best time of RESOLVES fresh processes, with the peak RSS of that run."""
    runs = []
    for _ in range(RESOLVES):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, mode, arg],
            input=wire,
            capture_output=True,
            check=True,
        ).stdout.split()
        runs.append((float(out[0]), int(out[1]), float(out[2])))
    return min(runs)


def inline_round_trip(array: np.ndarray) -> None:
    float(pickle.loads(pickle.dumps(array, protocol=5)).sum())


SMALL = 512  # distinct small values, cycled: their fan-out directories exist after one pass
BATCHES = 7  # timed batches per store, interleaved across stores (the disk is noisy)
ROUND_TRIP = "pickle.loads(pickle.dumps(store.proxy(value, evict=True))).keys()"


def small_values() -> list[dict]:
    return [{"task": i, "name": "small"} for i in range(SMALL)]


def round_trips(store, values: list[dict]) -> float:
    """Mean seconds for proxy(evict=True) + pickle + unpickle + resolve of each value."""
    t0 = time.perf_counter()
    for value in values:
        pickle.loads(pickle.dumps(store.proxy(value, evict=True))).keys()  # any use resolves
    return (time.perf_counter() - t0) / len(values)


def inline_small_latency(n: int) -> float:
    values = small_values() * (n // SMALL + 1)
    t0 = time.perf_counter()
    for v in values:
        pickle.loads(pickle.dumps(v, protocol=5))
    return (time.perf_counter() - t0) / len(values)


BYREF_SETUP = "import pickle, byref\nstore = byref.Store({url!r})\n"
PROXYSTORE_SETUP = (
    "import pickle\nfrom proxystore.connectors.file import FileConnector\n"
    "from proxystore.store import Store\n"
    "store = Store('bench', FileConnector({path!r}), register=True)\n"
)


def metadata_ops(setup: str, under: Path) -> dict[str, float] | None:
    """Filesystem operations per small round trip under `under` (strace), or None."""
    warm = setup + "value = {'task': 1, 'name': 'small'}\nfor _ in range(3):\n    " + ROUND_TRIP
    try:
        return fsops.count(ROUND_TRIP, under, n=200, setup=warm)
    except fsops.Unavailable as e:
        print(f"metadata operations not counted: {e}")
        return None


def small_object_rows(batch: int, disk: Path, proxystore_ok: bool) -> list[str]:
    """Time and filesystem operations per small round trip for every store, in one run."""
    shm = Path(tempfile.mkdtemp(prefix="byref-bench-", dir="/dev/shm"))
    redis = RedisServer()
    try:
        contenders = {
            "byref file://, project disk": (disk / "byref", "byref"),
            "byref file://, tmpfs": (shm / "byref", "byref"),
            "byref memory://": (None, "memory"),
            "byref redis://": (None, "redis"),
        }
        if proxystore_ok:
            contenders["ProxyStore FileConnector, project disk"] = (disk / "ps", "proxystore")
            contenders["ProxyStore FileConnector, tmpfs"] = (shm / "ps", "proxystore")
        stores, ops = {}, {}
        for name, (path, kind) in contenders.items():
            if kind == "byref":
                stores[name] = byref.Store(path.as_uri())
                ops[name] = metadata_ops(BYREF_SETUP.format(url=path.as_uri()), path)
            elif kind == "proxystore":
                from proxystore.connectors.file import FileConnector
                from proxystore.store import Store

                stores[name] = Store(f"bench-{len(stores)}", FileConnector(str(path)))
                ops[name] = metadata_ops(PROXYSTORE_SETUP.format(path=str(path)), path)
            elif kind == "memory":
                stores[name] = byref.Store("memory://bench-small")
            else:
                stores[name] = byref.Store(f"redis://127.0.0.1:{redis.port}")
        values = small_values()
        cycle = values * (batch // SMALL + 1)
        times: dict[str, list[float]] = {name: [] for name in stores}
        for store in stores.values():
            round_trips(store, values)  # warm: runtime, connections, fan-out directories
        for _ in range(BATCHES):
            for name, store in stores.items():
                times[name].append(round_trips(store, cycle[:batch]))
        rows = []
        for name, store in stores.items():
            wire = len(pickle.dumps(store.proxy(values[0], evict=True)))
            spent = sorted(times[name])
            counted = ops.get(name)
            fs = (
                f"{counted['changes']:.0f} | {counted['opens']:.0f} | {counted['listings']:.0f} | "
                f"{counted['stats']:.0f}"
                if counted
                else "— | — | — | —"
            )
            rows.append(
                f"| {name} | {fs} | {fmt_time(spent[len(spent) // 2])} | {fmt_time(spent[0])} | "
                f"{wire} B |"
            )
        return rows
    finally:
        redis.stop()
        shutil.rmtree(shm, ignore_errors=True)


def open_proxystore(path: Path):
    """ProxyStore with a FileConnector in `path`, when ProxyStore is installed."""
    global proxystore_version
    try:
        import proxystore as ps
        from proxystore.connectors.file import FileConnector
        from proxystore.store import Store
    except ImportError:
        print("ProxyStore not installed: its rows are skipped (pip install proxystore)")
        return None
    proxystore_version = ps.__version__
    return Store("byref-bench", FileConnector(str(path)), register=True)


proxystore_version = ""


def fmt_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default=",".join(SIZES))
    parser.add_argument("--store", help="store URL (default: a file store in a temp dir)")
    parser.add_argument("--small-n", type=int, default=2_000, help="round trips per batch")
    args = parser.parse_args()

    # On the project's disk (the checkout's filesystem), not wherever /tmp is.
    with tempfile.TemporaryDirectory(prefix=".byref-bench-", dir=Path(__file__).parent) as tmp:
        store = byref.Store(args.store or Path(tmp, "store").as_uri())
        proxystore = open_proxystore(Path(tmp, "proxystore"))
        print(f"store: {store.url}", flush=True)
        rows = []
        for label in args.sizes.split(","):
            n = SIZES[label]
            array = np.random.default_rng(0).random(n // 8)
            repeat = 5 if n <= 1 << 20 else 2
            print(f"{label}: inline...", end=" ", flush=True)
            inline = best(lambda a=array: inline_round_trip(a), repeat)

            print("byref put...", end=" ", flush=True)
            t0 = time.perf_counter()
            proxy = store.proxy(array)
            wire = pickle.dumps(proxy)
            put = time.perf_counter() - t0

            print("resolve...", end=" ", flush=True)
            resolve, rss, total = run_child("proxy", "", wire)
            assert abs(total - float(array.sum())) <= 1e-6 * abs(total)
            store.evict(byref.handle_of(proxy).key)

            ps = None
            if proxystore is not None:
                print("ProxyStore...", end=" ", flush=True)
                t0 = time.perf_counter()
                ps_wire = pickle.dumps(proxystore.proxy(array))
                ps_put = time.perf_counter() - t0
                ps_resolve, ps_rss, _ = run_child("proxy", "", ps_wire)
                ps = (ps_put, ps_resolve, ps_rss, len(ps_wire))

            print("np.load mmap...", flush=True)
            npy = Path(tmp, "a.npy")
            np.save(npy, array)
            mmap, mmap_rss, _ = run_child("mmap", str(npy))
            npy.unlink()
            rows.append((label, n, inline, put, resolve, mmap, rss, mmap_rss, len(wire), ps))
            del array, proxy

        print(f"small objects: {BATCHES} batches of {args.small_n} round trips...", flush=True)
        small_rows = small_object_rows(args.small_n, Path(tmp), proxystore is not None)
        small_inline = inline_small_latency(args.small_n)

    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, byref {byref.__version__}, store {store.url.split(':')[0]}://",
        "",
        "| size | inline pickle round trip | byref put (proxy + pickle) | byref resolve + sum "
        "(fresh process) | np.load mmap + sum (fresh process) | resolve / mmap | "
        "(put + resolve) / inline | resolver peak RSS | RSS / size | pickled proxy |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for label, n, inline, put, resolve, mmap, rss, _mrss, wire_len, _ps in rows:
        lines.append(
            f"| {label} | {fmt_time(inline)} | {fmt_time(put)} | {fmt_time(resolve)} | "
            f"{fmt_time(mmap)} | {resolve / mmap:.2f}x | {(put + resolve) / inline:.2f}x | "
            f"{fmt_bytes(rss)} | {rss / n:.2f}x | {wire_len} B |"
        )
    if proxystore is not None:
        lines += [
            "",
            f"ProxyStore {proxystore_version} (FileConnector) on the same arrays:",
            "",
            "| size | ProxyStore put | ProxyStore resolve + sum | resolver peak RSS | "
            "pickled proxy | byref speed-up, put + resolve |",
            "|---|---|---|---|---|---|",
        ]
        for label, _n, _i, put, resolve, _m, _r, _mr, _w, (p_put, p_res, p_rss, p_wire) in rows:
            lines.append(
                f"| {label} | {fmt_time(p_put)} | {fmt_time(p_res)} | {fmt_bytes(p_rss)} | "
                f"{p_wire} B | {(p_put + p_res) / (put + resolve):.1f}x |"
            )
    lines += [
        "",
        f"Small object (a 2-key dict): proxy(evict=True) + pickle + unpickle + resolve, "
        f"{BATCHES} batches of {args.small_n} per store, interleaved; inline pickle round trip "
        f"{fmt_time(small_inline)}. Metadata operations (strace, per round trip): *changes* "
        "are files created, renamed, linked or removed and directories made or removed (each "
        "a round trip to the metadata server on Lustre or GPFS); opens, directory listings "
        "and stats are lookups.",
        "",
        "| store | changes | opens | listings | stats | time, median batch | time, best batch "
        "| pickled proxy |",
        "|---|---|---|---|---|---|---|---|",
        *small_rows,
    ]
    results = publish(
        "\n".join(lines),
        "RESULTS.md",
        "Round-trip benchmark",
        "`python benches/roundtrip.py` (`make bench`)",
    )
    print(f"\nwritten to {results}")


if __name__ == "__main__":
    main()
