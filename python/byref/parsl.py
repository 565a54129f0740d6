"""Parsl integration: pass large task arguments by reference.

>>> @byref.parsl.proxy_args("file:///scratch/byref")   # directly above @python_app
... @python_app
... def train(data, model):
...     ...

At submission, arguments larger than ``threshold`` (numpy arrays, ``bytes``, ``bytearray``,
``memoryview``; and anything of the given ``types``) are stored and replaced by proxies, also
inside lists, tuples and dicts. Futures, Parsl ``File`` objects and small values are left
alone, so Parsl still sees every dependency.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from parsl.data_provider.files import File

from .proxy import Proxy, handle_of
from .store import Store

#: Arguments at least this large (in bytes) are proxied by default.
DEFAULT_THRESHOLD = 1 << 20


def _nbytes(obj: Any) -> int | None:
    """The size of a buffer-like argument, or None for other objects."""
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    if isinstance(obj, memoryview):
        return obj.nbytes
    nbytes = getattr(type(obj), "nbytes", None)  # numpy arrays, without importing numpy
    return obj.nbytes if nbytes is not None else None


class _Replacer:
    """Swaps large arguments for proxies, remembering the keys it stored."""

    def __init__(self, store: Store, threshold: int, types: tuple[type, ...]) -> None:
        self.store = store
        self.threshold = threshold
        self.types = types
        self.keys: list[str] = []

    def __call__(self, obj: Any) -> Any:
        kind = type(obj)
        if kind is Proxy or _is_parsl_dependency(obj):
            return obj
        size = _nbytes(obj)
        if (size is not None and size >= self.threshold) or (
            self.types and isinstance(obj, self.types)
        ):
            proxy = self.store.proxy(obj)
            self.keys.append(handle_of(proxy).key)
            return proxy
        if kind is list:
            return [self(x) for x in obj]
        if kind is tuple:
            return tuple(self(x) for x in obj)
        if kind is dict:
            return {k: self(v) for k, v in obj.items()}
        return obj


def _is_parsl_dependency(obj: Any) -> bool:
    """Futures and Files: Parsl must see them as they are to track dependencies."""
    return isinstance(obj, (Future, File))


def proxy_args(
    store: Store | str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    *,
    types: tuple[type, ...] = (),
    evict: bool = False,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator, directly above ``@python_app``: large arguments travel by reference.

    ``store`` is a :class:`byref.Store` or a URL (default: ``Store()``); the workers must reach
    it. With ``evict=True`` the proxied inputs are released once the task's future completes
    (not on first resolve, so Parsl's retries still find them).
    """

    def decorate(app: Callable[..., Any]) -> Callable[..., Any]:
        opened = store if isinstance(store, Store) else Store(store)

        @functools.wraps(app)
        def submit(*args: Any, **kwargs: Any) -> Any:
            replace = _Replacer(opened, threshold, types)
            future = app(*replace(args), **replace(kwargs))
            if evict and replace.keys:
                keys = list(replace.keys)
                future.add_done_callback(lambda _f: [opened.evict(k) for k in keys])
            return future

        return submit

    return decorate


__all__ = ["DEFAULT_THRESHOLD", "proxy_args"]
