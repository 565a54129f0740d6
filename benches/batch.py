"""10,000 objects of 1 KiB from Python: one call each against one call for all, on Redis
and the daemon (and a file store for reference), in one run.

One at a time, each put or get is a round trip, and the next waits for it; `put_many` /
`get_many` keep up to 64 in flight, and `asyncio.gather` of `aget` lets byref's runtime run
them all at once. Writes benches/RESULTS-batch.md.
"""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

# Every get must reach the store: no answer from this process's cache of repeated fetches,
# nor from the node cache in /dev/shm (which writes a file per object it takes in).
os.environ["BYREF_CACHE_BYTES"] = "0"
os.environ["BYREF_NODE_CACHE"] = "off"

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from servers import on_each_store, table
from timing import best, publish

COUNT = 10_000
REPEAT = 3


def measure(store: byref.Store) -> dict[str, float]:
    """Objects per second for each way of moving COUNT objects of 1 KiB."""
    objs = [os.urandom(1024) for _ in range(COUNT)]
    keys = store.put_many(objs)

    async def gather() -> None:
        await asyncio.gather(*(store.aget(k) for k in keys))

    timings = {
        "put, one at a time": best(lambda: [store.put(o) for o in objs], REPEAT),
        "put_many": best(lambda: store.put_many(objs), REPEAT),
        "get, one at a time": best(lambda: [store.get(k) for k in keys], REPEAT),
        "get_many": best(lambda: store.get_many(keys), REPEAT),
        "aget, asyncio.gather": best(lambda: asyncio.run(gather()), REPEAT),
    }
    got = store.get_many(keys)
    assert got == objs, "get_many returned other bytes"
    return {name: COUNT / seconds for name, seconds in timings.items()}


def rate(rates: dict[str, float], way: str) -> str:
    """Objects per second, and the speed-up over one at a time."""
    base = rates["put, one at a time" if way.startswith("put") else "get, one at a time"]
    speedup = "" if "one at a time" in way else f" ({rates[way] / base:.1f}x)"
    return f"{rates[way]:,.0f}{speedup}"


def main() -> None:
    results = on_each_store(measure, "byref-batch-")
    header = (
        f"{COUNT:,} objects of 1 KiB from one Python thread, objects per second (best of "
        f"{REPEAT}); in brackets, the speed-up over one at a time."
    )
    publish(
        table(header, results, rate),
        "RESULTS-batch.md",
        "Batched and awaited puts and gets against one at a time",
        "`python benches/batch.py` (in `make bench`)",
    )


if __name__ == "__main__":
    main()
