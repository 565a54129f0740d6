"""Lifetimes: what a store holds on a scope's behalf, released together when the scope ends.

>>> with byref.ContextLifetime(store) as life:
...     p = store.proxy(big, lifetime=life)    # released when the block ends
>>> lease = byref.LeaseLifetime(store, seconds=600)
>>> lease.extend(600)                          # ten more minutes from now
>>> run = byref.ProcessLifetime(store)         # released when this process exits

Every reference records its holder (this process, its host and boot), in the store itself:
what a process killed with -9 held is found and released by ``byref gc --dead`` (or
``store.gc(dead=True)``) from any process on its host, and a lease's once it has ended.
Plain ``store.put``/``store.proxy`` without a lifetime keep their objects until evicted
or collected by age (``byref gc --older-than 7d``).
"""

from __future__ import annotations

import atexit
import os
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from . import _native
from .errors import ConfigError
from .store import Store

#: Lifetimes of this process still open: closed at exit (but leases, which outlive it).
_open: weakref.WeakSet[Lifetime] = weakref.WeakSet()


class Lifetime:
    """References stored on this lifetime's behalf (``store.put(x, lifetime=life)``, or
    ``proxy``, ``put_many``...), released together by :meth:`close`.

    Its holder record (kind, process, host, label) is written to ``store`` when it is made,
    so ``byref ls`` shows who holds what and ``byref gc --dead`` can release what it held if its
    process dies without closing it.
    """

    _kind = "process"

    def __init__(self, store: Store | str | None = None, *, label: str = "", **native: Any) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.label = label
        self._holder = self.store.native.holder(self._kind, label, **native)
        self._lock = threading.Lock()
        self.closed = False
        # A forked child inherits this object: its exit must not release what the parent holds.
        self._pid = os.getpid()
        _open.add(self)

    @property
    def holder(self) -> _native.Holder:
        """The extension's holder: what a put made for this lifetime hands the native store."""
        return self._holder

    @property
    def tag(self) -> str:
        """The holder tag its references carry (16 hex digits), as ``byref ls`` shows it."""
        return self._holder.tag

    def adopt_results(self) -> None:
        """From now on, in this process, results other processes stored on this lifetime's
        behalf (with its tag, released on first resolve: a Parsl worker's) become this
        lifetime's as they are unpickled here: their proxies resolve any number of times, and
        each reference is released once its proxy is gone (at the latest by :meth:`close`)."""
        self._holder.start_adopting()

    def release(self, keys: Iterable[str]) -> int:
        """Releases one of this lifetime's references to each of ``keys`` now (what a task
        that has finished no longer needs); returns how many objects that deleted."""
        return self._holder.release(list(keys))[1]

    def close(self, *, sweep: bool = False) -> tuple[int, int]:
        """Releases everything stored on this lifetime's behalf, then its record; with
        ``sweep``, also what other processes stored with its tag (workers' results).
        ``(references, objects)`` released; closing again releases nothing."""
        with self._lock:
            if self.closed:
                return (0, 0)
            self.closed = True
        _open.discard(self)
        return self._holder.release(None, sweep)

    def __enter__(self) -> Lifetime:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"{type(self).__name__}({self.store.url!r}, tag={self.tag}, {state})"


class ContextLifetime(Lifetime):
    """Released when its ``with`` block ends (or :meth:`close` is called)."""


class ProcessLifetime(Lifetime):
    """Released when this process exits; if it is killed instead, ``byref gc --dead`` on its
    host releases what it held."""


class LeaseLifetime(Lifetime):
    """Released ``seconds`` from now unless :meth:`extend` ed: by this process if it still
    runs then, else by the next ``byref gc --dead`` (anywhere). A lease outlives the process
    that made it: it is the way to hand objects to a later job."""

    _kind = "lease"

    def __init__(
        self, store: Store | str | None = None, seconds: float = 60.0, *, label: str = ""
    ) -> None:
        super().__init__(store, label=label, lease=seconds)
        self._timer: threading.Timer | None = None
        self._schedule(seconds)

    def _schedule(self, seconds: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(seconds, self.close)
        self._timer.daemon = True
        self._timer.start()

    def extend(self, seconds: float) -> None:
        """Moves the lease's end to ``seconds`` from now."""
        if self.closed:
            raise ConfigError("this lease has ended")
        self._holder.extend(seconds)
        self._schedule(seconds)

    def close(self, *, sweep: bool = False) -> tuple[int, int]:
        if self._timer is not None:
            self._timer.cancel()
        return super().close(sweep=sweep)


class OnBehalf(Lifetime):
    """Stores with the holder tag of another process's lifetime (a Parsl worker storing a
    task's results for the run that submitted it): that lifetime releases them, or
    ``byref gc --dead`` once its process is gone. Releases nothing itself."""

    def __init__(self, store: Store | str | None, tag: str) -> None:
        self.store = store if isinstance(store, Store) else Store(store)
        self.label = ""
        self._holder = self.store.native.holder(tag=tag)
        self._lock = threading.Lock()
        self.closed = False

    def release(self, keys: Iterable[str]) -> int:
        return 0

    def close(self, *, sweep: bool = False) -> tuple[int, int]:
        return (0, 0)


@atexit.register
def _close_at_exit() -> None:
    for lifetime in list(_open):
        if not isinstance(lifetime, LeaseLifetime) and lifetime._pid == os.getpid():
            try:
                lifetime.close()
            except Exception:
                pass


__all__ = ["ContextLifetime", "LeaseLifetime", "Lifetime", "ProcessLifetime"]
