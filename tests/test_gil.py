"""Other Python threads run while byref works: a put large enough to take time releases the GIL,
on every store (an in-memory store's small puts and resolves keep it: they take less time than
handing it over)."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator

import numpy as np
import pytest

import byref


@pytest.fixture
def long_switch_interval() -> Iterator[None]:
    """The GIL passes between Python threads when a thread lets it go, or after 0.5 s (longer
    than any step here), not every 5 ms: a counting thread then advances during a call
    exactly when that call releases the GIL."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.5)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def counts_during(call: Callable[[], object]) -> int:
    """How far another Python thread counts while ``call()`` runs."""
    count = 0
    stop = False

    def counter() -> None:
        nonlocal count
        while not stop:
            count += 1

    thread = threading.Thread(target=counter)
    thread.start()
    time.sleep(0.05)  # lets the counter start; from here on this thread holds the GIL
    before = count
    call()
    during = count - before
    stop = True
    thread.join()
    return during


def test_a_large_put_lets_other_threads_run(store: byref.Store, long_switch_interval: None) -> None:
    data = np.random.default_rng(0).random(8 << 20)  # 64 MiB: hashed and copied
    assert counts_during(lambda: store.put(data)) > 0


def test_the_check_sees_a_call_that_keeps_the_gil(long_switch_interval: None) -> None:
    # What the test above tells apart: a call holding the GIL for as long lets nothing run.
    data = np.random.default_rng(0).random(8 << 20)
    assert counts_during(lambda: data.tobytes()) == 0
