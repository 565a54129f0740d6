"""What it costs a task to return (or pass on) the large argument it resolved.

A worker-resolved proxy pickles as its current value (README, "A proxy is its value"): an
unchanged value is hashed and stored again under the key it already has, which writes nothing
new; a changed one is stored. Measured against the baselines in the same run: the first put
of the same value, and pickling the array inline as plain Parsl would.

    python benches/value_return.py [--mb 100] [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import pickle
import sys
import tempfile
import uuid
from pathlib import Path

os.environ["BYREF_NODE_CACHE"] = "off"  # as the earlier runs measured

import numpy as np

import byref

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from timing import best, fmt_time, publish

from tests.servers import RedisServer


def measure(label: str, store: byref.Store, array: np.ndarray, repeat: int) -> str:
    def arrived() -> object:
        proxy = pickle.loads(pickle.dumps(store.proxy(array, hold=False)))
        proxy.sum()  # the task touches it: resolved, so it pickles as its value
        return proxy

    fresh = array.copy()

    def change() -> None:
        fresh[0] += 1  # each put below stores a value the store has not seen
        os.sync()

    # Every timed write starts with no dirty pages left by the one before (os.sync, untimed):
    # otherwise later columns pay for earlier ones' writeback.
    first_put = best(lambda: store.put(fresh), repeat, between=change)
    proxies = [arrived() for _ in range(repeat)]
    unchanged = best(lambda: pickle.dumps(proxies.pop()), repeat, between=os.sync)
    changed_proxies = [arrived() for _ in range(repeat)]
    for i, p in enumerate(changed_proxies):
        p += i + 1  # the task changes its argument: a value the store has not seen
    os.sync()
    changed = best(lambda: pickle.dumps(changed_proxies.pop()), repeat, between=os.sync)
    inline = best(lambda: pickle.dumps(array, protocol=5), repeat)
    return (
        f"| {label} | {fmt_time(first_put)} | {fmt_time(unchanged)} "
        f"({unchanged / first_put:.2f}x) | {fmt_time(changed)} ({changed / first_put:.2f}x) "
        f"| {fmt_time(inline)} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    array = np.random.default_rng(0).random(args.mb * 1_000_000 // 8)
    rows = [
        "| store | first put | return unchanged | return changed | inline pickle |",
        "|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as tmp:
        rows.append(measure("file", byref.Store(Path(tmp).as_uri()), array, args.repeat))
    server = RedisServer()
    try:
        redis = byref.Store(server.url, prefix=f"{uuid.uuid4().hex}:")
        rows.append(measure("redis", redis, array, args.repeat))
    finally:
        server.stop()
    text = (
        f"A task returns its {args.mb} MB argument after resolving it; best of {args.repeat}, "
        "ratios against the first put of the same value.\n\n" + "\n".join(rows) + "\n"
    )
    publish(
        text,
        "RESULTS-value-return.md",
        "Returning a resolved argument",
        "`python benches/value_return.py`",
    )


if __name__ == "__main__":
    main()
