"""How a proxy pickles (the rule in :mod:`byref.proxy`'s docstring): unresolved, as its
handle; holding its target, as the target's current value: its own handle while the value is
unchanged, inline if small, else stored again.

The proxy's ``__reduce_ex__`` is native (``crates/byref-py/src/proxy/pickle.rs``): it hashes
the value, and ``byref::travel`` decides which of the three travels. The two that need Python
objects are carried out here: :func:`reduce_inline` and :func:`reduce_stored_again`.
"""

from __future__ import annotations

import pickle
from typing import Any

from . import _native
from .kinds import class_name

#: Values whose frame is smaller than this travel inline when a proxy pickles as its value.
INLINE_MAX: int = _native.INLINE_MAX

#: Per store URL, the holder a value stored again when its proxy is pickled belongs to (a
#: Parsl run's, while it runs: a task's result handed on to the next task is the run's).
#: Without one, it is stored plainly. Set through `restore_for` and `stop_restoring`.
_restoring: dict[str, _native.Holder] = {}


def restore_for(url: str, holder: _native.Holder) -> None:
    """Values of proxies of the store at ``url`` stored again as they are pickled (changed
    since they were fetched) are held by ``holder`` from now on."""
    _restoring[url] = holder


def stop_restoring(url: str) -> None:
    """Values stored again for the store at ``url`` are stored plainly from now on."""
    _restoring.pop(url, None)


def reduce_inline(
    frame: tuple[int, bytes, list[memoryview]], protocol: int | None, rebuild: Any
) -> tuple[Any, tuple[Any, ...]]:
    """What pickles as a proxy's value ``frame``, inside the pickle: the plain value, made
    again by ``rebuild`` (``byref.proxy._inline``, one of the names pickles carry)."""
    encoding, stream, buffers = frame
    in_band = protocol is not None and protocol >= 5
    parts = [pickle.PickleBuffer(b) if in_band else bytes(b) for b in buffers]
    return rebuild, (encoding, stream, parts)


def reduce_stored_again(
    proxy: _native.ProxyBase,
    target: Any,
    frame: tuple[int, bytes, list[memoryview]],
    url: str,
    evict: bool,
) -> tuple[Any, tuple[Any, ...]]:
    """What pickles as a proxy of ``target`` (changed since it was stored), its ``frame``
    stored again in the store at ``url``: a fresh reference, released on resolve if the old
    one (``evict``) was. Called with the proxy's lock held."""
    encoding, stream, buffers = frame
    holder = _restoring.get(url)
    # Opened as the handle's store, not the user's: a handle may come from anyone.
    fresh = _native.Store.for_handle(url).put(encoding, stream, buffers, evict=evict, holder=holder)
    handle, kind = fresh.encode(), class_name(type(target))
    _native.ProxyBase._byref_restored(proxy, handle, kind, not fresh.evict)
    return _native.reduce_handle(handle, kind, type(proxy)._byref_optional_methods)
