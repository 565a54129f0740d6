"""Resolving a proxy: its target fetched and unpickled on first use, once, under its lock."""

from __future__ import annotations

from typing import Any

from . import _native
from .errors import BackendError
from .serialize import loads

#: A proxy's target before it is fetched.
UNRESOLVED: Any = object()


def label(handle: bytes) -> str:
    decoded = _native.Handle.decode(handle)
    return f"object {decoded.key} in {decoded.url}"


def is_proxy(obj: Any) -> bool:
    """Whether ``obj`` is a proxy (without resolving it, as ``isinstance`` might)."""
    return issubclass(type(obj), _native.ProxyBase)  # the base of byref.Proxy, and of it only


def unwrap(obj: Any) -> Any:
    """The target of a proxy, anything else as it is: both operands of an operator."""
    return target_of(obj) if is_proxy(obj) else obj


def target_of(proxy: _native.ProxyBase) -> Any:
    """The proxy's target, fetching and unpickling it on first use."""
    target = object.__getattribute__(proxy, "_byref_target")
    if target is not UNRESOLVED:
        return target
    # One lock per proxy: threads touching the same proxy fetch it once (an evict=True
    # proxy can only be fetched once); threads with different proxies never wait on each other.
    with object.__getattribute__(proxy, "_byref_lock"):
        target = object.__getattribute__(proxy, "_byref_target")
        if target is UNRESOLVED:
            handle = object.__getattribute__(proxy, "_byref_handle")
            try:
                frame = _native.resolve(handle)
            except BackendError as e:
                raise naming_object(e, handle) from None
            target = adopt(proxy, frame)
    return target


def naming_object(error: BackendError, handle: bytes) -> BackendError:
    """``error`` naming the object too: the backend's message names only the store."""
    return type(error)(f"{error} (resolving {_native.Handle.decode(handle).key})")


def adopt(proxy: _native.ProxyBase, frame: _native.Frame) -> Any:
    """Makes the value unpickled from ``frame``, fetched for ``proxy``, its target; called with
    the proxy's lock held, while it is unresolved."""
    handle = object.__getattribute__(proxy, "_byref_handle")
    target = loads(frame.encoding, frame.stream, frame.buffers, lambda: label(handle))
    object.__setattr__(proxy, "_byref_target", target)
    # A fetched proxy's handle may have been released by this very resolve, and is the
    # sender's to hand on in any case: from now on this proxy travels as its value.
    object.__setattr__(proxy, "_byref_owns_handle", False)
    return target
