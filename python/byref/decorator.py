"""``proxy_args``: large arguments of any submitting callable travel by reference.

Executors pickle a task's arguments when it is submitted, so what byref wraps is the call
that submits: ``pool.submit``, ``client.submit`` (Dask), ``executor.submit`` (Globus
Compute), or a Parsl app, whose call submits it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from typing import Any

from .arguments import Policy, Replacer, arguments
from .lifetimes import Lifetime, ProcessLifetime
from .proxy import handle_of, is_proxy
from .store import Store


def _handles_in(value: Any) -> Iterator[bytes]:
    """The handles of the proxies in a task's result, also inside lists, tuples and dicts."""
    for _, item in arguments(value, is_proxy):
        if is_proxy(item):
            yield handle_of(item).encode()


def _release_inputs(lifetime: Lifetime, handles: list[Any], done: Any) -> None:
    """Releases a completed task's proxied inputs, but those it returned untouched: their
    handles came back as they went, and must stay resolvable (until ``lifetime`` ends)."""
    failed = done.cancelled() or done.exception() is not None
    returned = set() if failed else set(_handles_in(done.result()))
    lifetime.release(h.key for h in handles if h.encode() not in returned)


def submitting(
    submit: Callable[..., Any],
    store: Store,
    policy: Policy,
    release_on_completion: bool,
    lifetime: Callable[[], Lifetime],
) -> Callable[..., Any]:
    """``submit``, called with the arguments ``policy`` selects swapped for proxies, stored
    on behalf of ``lifetime()``."""

    @functools.wraps(submit)
    def proxied(*args: Any, **kwargs: Any) -> Any:
        # Holding the arguments: an executor may take their repr (Parsl's HTEX does), which
        # would otherwise fetch them back. Pickled later, they are re-hashed (~13 ms per
        # 100 MB), so a change made before the task is sent reaches it, as without byref.
        life = lifetime()
        replace = Replacer(store, policy, hold=True, lifetime=life)
        future = submit(*replace(args), **replace(kwargs))
        # A call that returns no future (it ran the task, or queued it its own way) leaves its
        # inputs to the lifetime's end.
        if release_on_completion and replace.handles and hasattr(future, "add_done_callback"):
            handles = list(replace.handles)
            future.add_done_callback(lambda done: _release_inputs(life, handles, done))
        return future

    return proxied


class _Lazy:
    """A lifetime made on first use (its record is a write to the store): what one decorated
    callable stores, released at exit."""

    def __init__(self, store: Store, label: str) -> None:
        self._store, self._label = store, label
        self._lifetime: Lifetime | None = None

    def __call__(self) -> Lifetime:
        if self._lifetime is None or self._lifetime.closed:
            self._lifetime = ProcessLifetime(self._store, label=self._label)
        return self._lifetime


def proxy_args(
    store: Store | str | None = None,
    threshold: int | None = None,
    *,
    types: tuple[type, ...] = (),
    keep: tuple[type, ...] = (),
    release_on_completion: bool = True,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Wraps a call that submits tasks so that their large arguments travel by reference.

    >>> submit = byref.proxy_args("file:///scratch/me/byref")(pool.submit)
    >>> future = submit(simulate, big_array, steps=10)   # big_array travels as a proxy

    Buffers (numpy arrays, ``bytes``, ``bytearray``, ``memoryview``) of at least ``threshold``
    bytes (default: the store's, :attr:`byref.Store.proxy_threshold`), and instances of
    ``types``, are stored in ``store`` (a :class:`byref.Store` or a URL; default ``Store()``)
    and replaced by proxies, also inside lists, tuples and dicts;
    instances of ``keep`` never are. Works for ``concurrent.futures`` executors, Dask's
    ``Client.submit``, Globus Compute's ``Executor.submit``, or any callable.

    What it stores belongs to a :class:`byref.ProcessLifetime`, released when this process
    exits (or by ``byref gc --dead`` if it is killed). With ``release_on_completion=True``
    (the default) each task's proxied inputs are released as soon as its future completes
    (through its ``add_done_callback``), except those the task returned untouched.
    For Parsl apps use :func:`byref.parsl.proxy_args`, built on this one.
    """

    def decorate(submit: Callable[..., Any]) -> Callable[..., Any]:
        opened = store if isinstance(store, Store) else Store(store)
        size = opened.proxy_threshold if threshold is None else threshold
        policy = Policy(size, tuple(types), tuple(keep))
        name = getattr(submit, "__qualname__", type(submit).__name__)
        lifetime = _Lazy(opened, f"proxy_args({name})")
        return submitting(submit, opened, policy, release_on_completion, lifetime)

    return decorate
