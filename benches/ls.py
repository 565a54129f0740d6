"""`byref ls` of a store holding 100,000 objects, on a file store and on Redis (and the
daemon, for reference): how long the listing takes, from Python and from the command line.

Issue 17's goal: under 2 s on this machine, file store and Redis. Each object is 100 bytes,
a third of them held by a lifetime (so that holder records are read too). Writes
benches/RESULTS-ls.md.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from servers import on_each_store, table
from timing import best, publish

COUNT = 100_000
REPEAT = 3


def fill(store: byref.Store) -> byref.ContextLifetime:
    life = byref.ContextLifetime(store, label="bench")
    objs = [os.urandom(100) for _ in range(COUNT)]
    third = COUNT // 3
    store.put_many(objs[:third], lifetime=life)
    store.put_many(objs[third:])
    return life


def command_line(url: str) -> float:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "byref", "ls", "--store", url],
        capture_output=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    rows = done.stdout.count(b"\n") - 1
    assert rows == COUNT + 1, f"byref ls listed {rows} rows"
    return elapsed


def measure(store: byref.Store) -> dict[str, float]:
    life = fill(store)
    try:
        listed = store.ls()
        assert len(listed) == COUNT + 1, len(listed)
        return {
            "store.ls()": best(lambda: store.ls(), REPEAT),
            "store.ls(kinds=False)": best(lambda: store.ls(kinds=False), REPEAT),
            "store.stats()": best(lambda: store.stats(), REPEAT),
            "byref ls (a new process)": min(command_line(store.url) for _ in range(REPEAT)),
        }
    finally:
        life.close()


def main() -> None:
    results = on_each_store(measure, "byref-ls-")
    header = (
        f"Listing a store of {COUNT:,} objects (and one holder record), seconds, best of "
        f"{REPEAT}. `store.ls()` reads each object's first bytes for its kind where the "
        "listing did not give them."
    )
    publish(
        table(header, results, lambda times, way: f"{times[way]:.2f}"),
        "RESULTS-ls.md",
        "Listing 100,000 objects",
        "`python benches/ls.py` (in `make bench`)",
    )


if __name__ == "__main__":
    main()
