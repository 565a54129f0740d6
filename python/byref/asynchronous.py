"""Resolving without waiting: ``await aresolve(p)`` from asyncio, ``prefetch(*proxies)`` in
the background."""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from . import _native
from .errors import BackendError
from .proxy import Proxy, extract, is_resolved
from .resolution import naming_object, target_of

#: Fetches that :func:`prefetch` runs at once (each waits with the GIL released).
PREFETCH_THREADS = 8


async def aresolve(proxy: Proxy) -> Any:
    """Resolves ``proxy`` without blocking the event loop and returns its target.

    The fetch runs on byref's I/O runtime with the GIL released; the value is unpickled on the
    event loop's thread. ``await``-ing many at once (``asyncio.gather``) fetches them
    concurrently.
    """
    if is_resolved(proxy):
        return extract(proxy)
    handle = object.__getattribute__(proxy, "_byref_handle")
    try:
        frame = await _native.resolve_async(handle)
    except BackendError as e:
        raise naming_object(e, handle) from None
    except Exception:
        # Another thread may have resolved it meanwhile (and released an evict=True handle).
        if is_resolved(proxy):
            return extract(proxy)
        raise
    # Under the proxy's lock: adopted unless another thread resolved it meanwhile.
    return _native.ProxyBase._byref_adopt_frame(proxy, frame)


#: The pool :func:`prefetch` runs on, and the process that made it (a forked child has the
#: parent's pool object but none of its threads).
_pool: tuple[int, ThreadPoolExecutor] | None = None


def _prefetch_pool() -> ThreadPoolExecutor:
    global _pool
    if _pool is None or _pool[0] != os.getpid():
        _pool = (os.getpid(), ThreadPoolExecutor(PREFETCH_THREADS, "byref-prefetch"))
    return _pool[1]


def prefetch(*proxies: Any) -> list[Future[Any]]:
    """Starts fetching ``proxies`` in the background and returns at once.

    A later touch of a proxy waits only for what is left of its fetch (or not at all), and
    never fetches twice. Values that are not proxies, or are resolved, are skipped. Returns
    one future per fetch started; a fetch that fails is tried again, and raises, on the touch.
    """
    pool = _prefetch_pool()
    return [
        pool.submit(target_of, p)
        for p in proxies
        if issubclass(type(p), Proxy) and not is_resolved(p)
    ]
