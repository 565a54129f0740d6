"""Resolving a proxy: its target fetched and unpickled on first use, once, under its lock.

The way there is native (:func:`target_of`, ``crates/byref-py/src/proxy/``): a resolved
proxy's target costs no Python frame, and a plain pickle is unpickled there; what it cannot
unpickle itself it hands to :func:`adopt`."""

from __future__ import annotations

from typing import Any

from . import _native
from .errors import BackendError
from .serialize import loads

#: A proxy's target before it is fetched.
UNRESOLVED: Any = _native.UNRESOLVED

#: The proxy's target, fetching and unpickling it on first use (once, under the proxy's lock:
#: threads touching one proxy fetch it once; an evict=True proxy can be fetched only once).
target_of = _native.target_of


def label(handle: bytes) -> str:
    decoded = _native.Handle.decode(handle)
    return f"object {decoded.key} in {decoded.url}"


def is_proxy(obj: Any) -> bool:
    """Whether ``obj`` is a proxy (without resolving it, as ``isinstance`` might)."""
    return issubclass(type(obj), _native.ProxyBase)  # the base of byref.Proxy, and of it only


def unwrap(obj: Any) -> Any:
    """The target of a proxy, anything else as it is: both operands of an operator."""
    return target_of(obj) if is_proxy(obj) else obj


def naming_object(error: BackendError, handle: bytes) -> BackendError:
    """``error`` naming the object too: the backend's message names only the store."""
    return type(error)(f"{error} (resolving {_native.Handle.decode(handle).key})")


def adopt(proxy: _native.ProxyBase, frame: _native.Frame) -> Any:
    """Makes the value unpickled from ``frame``, fetched for ``proxy``, its target; called with
    the proxy's lock held, while it is unresolved."""
    handle = object.__getattribute__(proxy, "_byref_handle")
    target = loads(frame.encoding, frame.stream, frame.buffers, lambda: label(handle))
    # From now on the proxy travels as its value.
    return _native.ProxyBase._byref_adopt(proxy, target)
