"""Timing and formatting shared by the benchmark scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path


def best(
    fn: Callable[[], object], repeat: int, between: Callable[[], object] | None = None
) -> float:
    """The fastest of `repeat` timed calls of `fn`; `between` runs untimed after each."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
        if between:
            between()
    return min(times)


def fmt_time(s: float) -> str:
    return f"{s * 1e6:.1f} µs" if s < 1e-3 else f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def publish(text: str, name: str, title: str, command: str) -> Path:
    """Prints a results table and writes it to benches/`name`, under `title` and the
    `command` that wrote it."""
    print()
    print(text)
    path = Path(__file__).with_name(name)
    path.write_text(f"# {title}\n\nWritten by {command}.\n\n{text.rstrip()}\n")
    return path
