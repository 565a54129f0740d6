"""Fan-out: N worker processes on one machine resolving the same object at once.

For each network store (Redis, the QUIC daemon) and N = 1, 2, 4, 8: N fresh processes
unpickle the same proxy, resolve it and touch every page; the time is from the start signal
until the last has finished, best of 3. Once with no node cache (each process fetches its
own copy) and once with the node cache (``BYREF_NODE_CACHE`` in /dev/shm: one fetch for the
machine). For the daemon, the GETs it served come from its status.

Writes the table to benches/RESULTS-fanout.md.
Usage: python benches/fanout.py [--size 200MB] [--workers 1,2,4,8]
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

os.environ.setdefault("BYREF_CONFIG_DIR", tempfile.mkdtemp(prefix="byref-bench-config-"))

import numpy as np

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import fmt_time, publish

from tests.servers import QuicDaemon, RedisServer

REPEAT = 3

# Waits for "go" on stdin, resolves, touches every page, prints when it finished.
WORKER = """
import pickle, sys, time, numpy as np, byref
wire = sys.stdin.buffer.read(int(sys.argv[1]))
print("ready", flush=True)
sys.stdin.buffer.readline()
proxy = pickle.loads(wire)
a = np.asarray(proxy)
a.view(np.uint8)[::4096].sum()
print(time.time(), flush=True)
"""


def run_once(wire: bytes, n: int, env: dict[str, str]) -> float:
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
    ends = []
    for p in procs:
        assert p.stdout is not None
        ends.append(float(p.stdout.read()))
        assert p.wait() == 0
    return max(ends) - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", default="200MB")
    parser.add_argument("--workers", default="1,2,4,8")
    args = parser.parse_args()
    size = int(args.size.removesuffix("MB")) * 1_000_000
    counts = [int(n) for n in args.workers.split(",")]
    array = np.random.default_rng(0).integers(0, 255, size, dtype=np.uint8)

    redis = RedisServer()
    daemon = QuicDaemon(Path(tempfile.mkdtemp(prefix="byref-fanout-")), "--memory", "4GiB")
    rows = []
    try:
        for name, url in (("Redis", redis.url), ("QUIC daemon", daemon.url)):
            wire = pickle.dumps(byref.Store(url).proxy(array))
            for cache in ("off", "node"):
                for n in counts:
                    times, gets = [], []
                    for _ in range(REPEAT):
                        node = Path(tempfile.mkdtemp(prefix="byref-fanout-node-", dir="/dev/shm"))
                        env = {**os.environ, "BYREF_CACHE_BYTES": "0", "BYREF_NODE_CACHE": "off"}
                        if cache == "node":
                            env["BYREF_NODE_CACHE"] = str(node / "cache")
                        before = daemon.gets_served() if name == "QUIC daemon" else 0
                        times.append(run_once(wire, n, env))
                        if name == "QUIC daemon":
                            gets.append(daemon.gets_served() - before)
                        shutil.rmtree(node, ignore_errors=True)
                    served = f"{min(gets)}" if gets else "-"
                    rows.append((name, cache, n, min(times), served))
                    print(rows[-1], flush=True)
    finally:
        redis.stop()
        daemon.stop()

    single = {(r[0], r[1]): r[3] for r in rows if r[2] == 1}
    lines = [
        f"Machine: {platform.machine()}, {os.cpu_count()} cores; one {args.size} uint8 array; "
        f"fresh worker processes, time from the start signal until the last has resolved it "
        f"and touched every page; best of {REPEAT}; byref's per-process cache off.",
        "",
        "| store | node cache | workers | all resolved | vs 1 worker | GETs the daemon served |",
        "|---|---|---|---|---|---|",
    ]
    for name, cache, n, t, served in rows:
        ratio = t / single[(name, cache)]
        lines.append(f"| {name} | {cache} | {n} | {fmt_time(t)} | {ratio:.2f}x | {served} |")
    publish(
        "\n".join(lines) + "\n",
        "RESULTS-fanout.md",
        "Fan-out: many workers on one machine resolving one object",
        "`python benches/fanout.py`",
    )


if __name__ == "__main__":
    main()
