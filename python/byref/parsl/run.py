"""The Parsl run's lifetime: what byref stores for a run goes at ``dfk.cleanup()``.

The decorator and the serializer plugin store a run's arguments (and, with
``results=True``, the workers store its results) on behalf of one :class:`ProcessLifetime`
per store, made at the run's first task and closed when its DataFlowKernel cleans up (at the
end of ``with parsl.load(config):``, or at exit). If the submitting process is killed
instead, ``byref gc --dead`` on its host releases all of it, the workers' results included:
they carry the run's holder tag.
"""

from __future__ import annotations

import functools
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor

import parsl
from parsl.dataflow.dflow import DataFlowKernel

from ..errors import ByrefError
from ..lifetimes import ProcessLifetime
from ..pickling import restore_for, stop_restoring
from ..store import Store

_lock = threading.Lock()
#: The open run lifetime of each store URL.
_runs: dict[str, ProcessLifetime] = {}
#: Store URLs whose workers stored results with the run's tag: swept at cleanup.
_swept: set[str] = set()


def run_lifetime(store: Store, *, results: bool = False) -> ProcessLifetime:
    """The current run's lifetime in ``store``, made on first use; ``results`` when workers
    will store with its tag, so that its close sweeps the store for their references."""
    with _lock:
        lifetime = _runs.get(store.url)
        if lifetime is None or lifetime.closed:
            lifetime = _runs[store.url] = ProcessLifetime(store, label="parsl run")
            # A task's result handed on, resolved here, is stored again: for the run.
            restore_for(store.url, lifetime.holder)
        if results:
            _swept.add(store.url)
            # Results arrive here as proxies: each the run's until nothing here refers to it.
            lifetime.adopt_results()
        return lifetime


def checkpointing() -> bool:
    """Whether the loaded run checkpoints its tasks' results (for later runs to reuse)."""
    try:
        dfk = parsl.dfk()
    except Exception:
        return False
    return getattr(getattr(dfk, "memoizer", None), "checkpoint_mode", None) is not None


def _close(url: str, lifetime: ProcessLifetime, sweep: bool) -> None:
    try:
        lifetime.close(sweep=sweep)
    except ByrefError as e:
        # A store gone before the run's end (a daemon stopped): the cleanup goes on, and
        # `byref gc --dead` releases what the run held once the store is back.
        warnings.warn(
            f"byref: the Parsl run's objects in {url} were not released: {e}", stacklevel=2
        )


#: How many runs have ended in this process: what is cached for a run (a function pickled
#: with proxies of what the run stored) is cached under it.
ended = 0


def close_runs() -> None:
    """Releases everything the runs stored (done at ``dfk.cleanup()``), store by store at
    once: a store that does not answer holds up the others no longer than its timeout."""
    global ended
    with _lock:
        ended += 1
        runs, swept = dict(_runs), set(_swept)
        _runs.clear()
        _swept.clear()
        for url in runs:
            stop_restoring(url)
    if not runs:
        return
    with ThreadPoolExecutor(len(runs)) as pool:
        for url, lifetime in runs.items():
            pool.submit(_close, url, lifetime, url in swept)


_cleanup = DataFlowKernel.cleanup


@functools.wraps(_cleanup)
def _cleanup_then_release(self: DataFlowKernel) -> None:
    try:
        _cleanup(self)
    finally:
        close_runs()


DataFlowKernel.cleanup = _cleanup_then_release  # type: ignore[method-assign]
