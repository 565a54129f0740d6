"""Proxies: stand-ins that pickle as a handle and become their target when first touched."""

from __future__ import annotations

import importlib
import operator
import threading
from typing import Any

from . import _native
from .errors import BackendError
from .serialize import loads

_UNRESOLVED: Any = object()


def _unpickle(handle: bytes, kind: str | None = None) -> Proxy:
    """Rebuilds a proxy from the handle it pickled as (no I/O until first use)."""
    return Proxy(handle, kind=kind)


def _label(handle: bytes) -> str:
    decoded = _native.Handle.decode(handle)
    return f"object {decoded.key} in {decoded.url}"


def _unpickle_callable(handle: bytes, kind: str | None = None) -> Proxy:
    return CallableProxy(handle, kind=kind)


def _class_name(cls: type) -> str | None:
    """``module:qualname`` when that finds ``cls`` again, else None."""
    name = f"{cls.__module__}:{cls.__qualname__}"
    return name if "<" not in name else None


def _find_class(name: str) -> type | None:
    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) else None


def is_proxy(obj: Any) -> bool:
    """Whether ``obj`` is a proxy (without resolving it, as ``isinstance`` might)."""
    return issubclass(type(obj), Proxy)


def _target(proxy: Proxy) -> Any:
    """The proxy's target, fetching and unpickling it on first use."""
    target = object.__getattribute__(proxy, "_byref_target")
    if target is not _UNRESOLVED:
        return target
    # One lock per proxy: threads touching the same proxy fetch it once (an evict=True
    # proxy can only be fetched once); threads with different proxies never wait on each other.
    with object.__getattribute__(proxy, "_byref_lock"):
        target = object.__getattribute__(proxy, "_byref_target")
        if target is _UNRESOLVED:
            handle = object.__getattribute__(proxy, "_byref_handle")
            try:
                frame = _native.resolve(handle)
            except BackendError as e:
                # Name the object too: the backend's message names only the store.
                raise type(e)(f"{e} (resolving {_native.Handle.decode(handle).key})") from None
            target = loads(frame.encoding, frame.stream, frame.buffers, lambda: _label(handle))
            object.__setattr__(proxy, "_byref_target", target)
    return target


class Proxy(_native.ProxyBase):
    """A lazy reference to a value in a byref store.

    Behaves as its target: attribute access, operators, ``len``, iteration, ``in``,
    comparisons, ``hash``, ``isinstance`` (through ``__class__``), ``str``/``repr``, numpy
    interop, and ``memoryview`` of targets with a buffer. Pickling it, resolved or not, writes
    only its handle.
    """

    __slots__ = ("__weakref__", "_byref_handle", "_byref_kind", "_byref_lock", "_byref_target")

    def __init__(self, handle: bytes, target: Any = _UNRESOLVED, kind: str | None = None) -> None:
        object.__setattr__(self, "_byref_handle", handle)
        object.__setattr__(self, "_byref_target", target)
        # The target's class, by name: pickled along, so that `isinstance` checks (Parsl makes
        # some on every result) answer without fetching the target.
        if kind is None and target is not _UNRESOLVED:
            kind = _class_name(type(target))
        object.__setattr__(self, "_byref_kind", kind)
        object.__setattr__(self, "_byref_lock", threading.Lock())

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[bytes, str | None]]:
        get = object.__getattribute__
        return _unpickle, (get(self, "_byref_handle"), get(self, "_byref_kind"))

    def __reduce__(self) -> tuple[Any, tuple[bytes, str | None]]:
        return self.__reduce_ex__(None)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        """The target's class: from the name stored with the proxy while unresolved."""
        target = object.__getattribute__(self, "_byref_target")
        if target is _UNRESOLVED:
            kind = object.__getattribute__(self, "_byref_kind")
            cls = _find_class(kind) if kind else None
            if cls is not None:
                return cls
            target = _target(self)
        return type(target)

    def __getattr__(self, name: str) -> Any:
        return getattr(_target(self), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_target(self), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(_target(self), name)

    def __dir__(self) -> list[str]:
        return dir(_target(self))

    def __repr__(self) -> str:
        return repr(_target(self))

    def __str__(self) -> str:
        return str(_target(self))

    def __bytes__(self) -> bytes:
        return bytes(_target(self))

    def __format__(self, spec: str) -> str:
        return format(_target(self), spec)

    def __hash__(self) -> int:
        return hash(_target(self))

    def __bool__(self) -> bool:
        return bool(_target(self))

    def __len__(self) -> int:
        return len(_target(self))

    def __iter__(self) -> Any:
        return iter(_target(self))

    def __reversed__(self) -> Any:
        return reversed(_target(self))

    def __next__(self) -> Any:
        return next(_target(self))

    def __contains__(self, item: Any) -> bool:
        return item in _target(self)

    def __getitem__(self, key: Any) -> Any:
        return _target(self)[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        _target(self)[key] = value

    def __delitem__(self, key: Any) -> None:
        del _target(self)[key]

    def __enter__(self) -> Any:
        return _target(self).__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return _target(self).__exit__(*exc)

    def __int__(self) -> int:
        return int(_target(self))

    def __float__(self) -> float:
        return float(_target(self))

    def __complex__(self) -> complex:
        return complex(_target(self))

    def __index__(self) -> int:
        return operator.index(_target(self))

    def __round__(self, *args: Any) -> Any:
        return round(_target(self), *args)

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy

        if copy:
            return numpy.array(_target(self), dtype=dtype, copy=True)
        return numpy.asarray(_target(self), dtype=dtype)


def _comparison(op: Any) -> Any:
    def compare(self: Proxy, other: Any) -> Any:
        return op(_target(self), other)

    return compare


def _binary(op: Any) -> tuple[Any, Any]:
    def forward(self: Proxy, other: Any) -> Any:
        return op(_target(self), other)

    def reflected(self: Proxy, other: Any) -> Any:
        return op(other, _target(self))

    return forward, reflected


def _in_place(op: Any) -> Any:
    def update(self: Proxy, other: Any) -> Proxy:
        object.__setattr__(self, "_byref_target", op(_target(self), other))
        return self

    return update


def _unary(op: Any) -> Any:
    def apply(self: Proxy) -> Any:
        return op(_target(self))

    return apply


for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(Proxy, f"__{_name}__", _comparison(getattr(operator, _name)))
for _name in (
    "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod", "pow",
    "lshift", "rshift", "and", "xor", "or",
):  # fmt: skip
    _op = getattr(operator, f"{_name}_" if _name in ("and", "or") else _name)
    _fwd, _rev = _binary(_op)
    setattr(Proxy, f"__{_name}__", _fwd)
    setattr(Proxy, f"__r{_name}__", _rev)
    setattr(Proxy, f"__i{_name}__", _in_place(getattr(operator, f"i{_name}")))
Proxy.__divmod__ = _binary(divmod)[0]
Proxy.__rdivmod__ = _binary(divmod)[1]
for _name in ("neg", "pos", "abs", "invert"):
    setattr(Proxy, f"__{_name}__", _unary(getattr(operator, _name)))
del _name, _op, _fwd, _rev


class CallableProxy(Proxy):
    """A proxy of a callable: ``callable()`` is true of a proxy exactly when of its target.

    Code such as Parsl's serializer picks a path by ``callable(obj)``, so a proxy of an array
    must not look callable.
    """

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _target(self)(*args, **kwargs)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[bytes, str | None]]:
        get = object.__getattribute__
        return _unpickle_callable, (get(self, "_byref_handle"), get(self, "_byref_kind"))


def resolve(proxy: Proxy) -> None:
    """Fetches the proxy's target now, if it has not been already."""
    _target(proxy)


def is_resolved(proxy: Proxy) -> bool:
    """Whether the proxy's target has been fetched (or was never stored away)."""
    return object.__getattribute__(proxy, "_byref_target") is not _UNRESOLVED


def extract(proxy: Proxy) -> Any:
    """The target itself, no longer behind a proxy."""
    return _target(proxy)


def handle_of(proxy: Proxy) -> _native.Handle:
    """The decoded handle the proxy pickles as."""
    return _native.Handle.decode(object.__getattribute__(proxy, "_byref_handle"))
