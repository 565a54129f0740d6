"""The stores the small-object benchmarks compare, on real servers started for the run."""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.servers import QuicDaemon, RedisServer

T = TypeVar("T")


def on_each_store(measure: Callable[[byref.Store], T], prefix: str) -> dict[str, T]:
    """`measure` of a fresh Redis server, byref daemon and file store (a local disk), by
    name; the servers stop afterwards."""
    work = Path(tempfile.mkdtemp(prefix=prefix))
    redis = RedisServer()
    daemon = QuicDaemon(work / "daemon")
    try:
        stores = {
            "Redis": byref.Store(redis.url),
            "daemon (QUIC)": byref.Store(daemon.url),
            "file (local disk)": byref.Store((work / "file").as_uri()),
        }
        return {name: measure(store) for name, store in stores.items()}
    finally:
        daemon.stop()
        redis.stop()


def table(
    header: str, results: dict[str, dict[str, T]], cell: Callable[[dict[str, T], str], str]
) -> str:
    """`header`, then a Markdown table: a row per store, a column per way of measuring."""
    ways = list(next(iter(results.values())))
    lines = [header, "", "| store | " + " | ".join(ways) + " |", "|---|" + "---:|" * len(ways)]
    for name, values in results.items():
        lines.append(f"| {name} | " + " | ".join(cell(values, way) for way in ways) + " |")
    return "\n".join(lines) + "\n"
