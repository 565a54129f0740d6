"""How a proxy pickles (the policy in :mod:`byref.proxy`'s docstring): unresolved, as its
handle; holding its target, as the target's current value: its own handle while the value is
unchanged, inline if small, else stored again.

The functions a pickle names to rebuild a proxy or a value (``byref._p``,
``byref.proxy._inline``) are the proxy module's, passed in: this module decides what travels.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

from . import _native
from .forwarding import optional_methods_of
from .kinds import class_name, kind_code
from .serialize import dumps

#: Values whose frame is smaller than this travel inline when a proxy pickles as its value.
INLINE_MAX = 1 << 20

#: Types whose instances cannot change: a proxy of one never needs re-hashing to pickle.
IMMUTABLE = (bytes, str, int, float, complex, bool, type(None), range)

#: What a pickle calls to rebuild: a proxy from its handle, or a value from its frame.
Rebuild = Callable[..., Any]


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


def reduce_handle(
    rebuild: Rebuild, handle: bytes, kind: str | None, methods: int
) -> tuple[Any, tuple[Any, ...]]:
    """What pickles as an unresolved proxy of ``handle`` (no methods: two bytes fewer),
    rebuilt by ``rebuild``."""
    code = kind_code(kind)
    return rebuild, (handle, code, methods) if methods else (handle, code)


def reduce_stored(rebuild: Rebuild, handle: bytes, obj: Any) -> tuple[Any, tuple[Any, ...]]:
    """What pickles as a proxy of ``obj``, just stored under ``handle``."""
    return reduce_handle(rebuild, handle, class_name(type(obj)), optional_methods_of(obj))


def reduce_value(
    proxy: Any, target: Any, protocol: Any, rebuild: Rebuild, rebuild_value: Rebuild
) -> tuple[Any, tuple[Any, ...]]:
    """Pickles ``proxy``, holding ``target``, as that target's current value: a proxy rebuilt
    by ``rebuild``, or the value itself by ``rebuild_value`` (inline).

    Called with the proxy's lock held.
    """
    get = object.__getattribute__
    handle = get(proxy, "_byref_handle")
    decoded = _native.Handle.decode(handle)
    owns = get(proxy, "_byref_owns_handle")
    unchanged = owns and type(target) in IMMUTABLE
    if not unchanged:
        encoding, stream, buffers = dumps(target)
        unchanged = owns and _native.key_of(encoding, stream, buffers) == decoded.key
    if unchanged:
        # Its own handle travels; one released on resolve goes only once.
        if decoded.evict:
            object.__setattr__(proxy, "_byref_owns_handle", False)
        kind = get(proxy, "_byref_kind")
        return reduce_handle(rebuild, handle, kind, proxy._byref_optional_methods)
    if len(stream) + sum(b.nbytes for b in buffers) < INLINE_MAX:
        in_band = protocol is not None and protocol >= 5
        parts = [pickle.PickleBuffer(b) if in_band else bytes(b) for b in buffers]
        return rebuild_value, (encoding, stream, parts)
    # Stored again, with a fresh reference that is released on resolve if the old one was.
    holder = _restoring.get(decoded.url)
    # Opened as the handle's store, not the user's: a handle may come from anyone.
    fresh = _native.Store.for_handle(decoded.url).put(
        encoding, stream, buffers, evict=decoded.evict, holder=holder
    )
    fresh_handle = fresh.encode()
    object.__setattr__(proxy, "_byref_handle", fresh_handle)
    object.__setattr__(proxy, "_byref_kind", class_name(type(target)))
    object.__setattr__(proxy, "_byref_owns_handle", not fresh.evict)
    return reduce_stored(rebuild, fresh_handle, target)
