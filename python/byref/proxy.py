"""Proxies: stand-ins that behave as their target, fetched when first touched.

A proxy pickles as what it stands for *now* (the README's "A proxy is its value"):

- Unresolved, it pickles as its handle: nothing was fetched, so nothing can have changed.
- Holding its target (fetched here, or made here by ``store.proxy``), it pickles as the
  target's current value. If the proxy may still hand on its handle (it was made here, and
  a handle released on resolve has not been handed on yet) and the value still has the
  handle's key, that handle travels. Otherwise a small value travels inline, and a larger one
  is stored again in the proxy's store and travels as a fresh handle: content addressing makes
  an unchanged value cost one hash and no write.
"""

from __future__ import annotations

import copy
import math
import operator
import weakref
from typing import Any

from . import _native
from .forwarding import CALL, MIXINS, forward_operators, optional_methods_of
from .kinds import class_name, find_class
from .resolution import UNRESOLVED, is_proxy, target_of, unwrap
from .serialize import loads

__all__ = [
    "CallableProxy",
    "Proxy",
    "extract",
    "handle_of",
    "is_proxy",
    "is_resolved",
    "proxy_class",
    "proxy_of",
    "resolve",
]


#: Rebuilds a proxy from the handle it pickled as, with no I/O until first use: ``_p(handle,
#: kind=None, methods=0)``. Every pickled proxy names it, so its name is short: ``byref``
#: exports it, and it pickles as ``byref._p``. Native (``crates/byref-py/src/proxy/
#: rebuild.rs``): a small value's round trip unpickles a proxy once.
_p = _native._p
_p.__module__ = "byref"


def rebuild_adopting(handle: bytes, kind: str | None, methods: int) -> Proxy:
    """:data:`_p` while a lifetime of this process may adopt handles (a Parsl run's)."""
    cls = proxy_class(methods)
    adopted = _native.adopt(handle)
    if adopted is None:
        return cls(handle, kind=kind)
    # A result stored for a lifetime of this process, come back: the lifetime now holds it,
    # and releases it once no future, task or name here refers to this proxy.
    kept, key, holder = adopted
    proxy = cls(kept, kind=kind)
    weakref.finalize(proxy, holder.release_soon, key).atexit = False
    return proxy


def _inline(encoding: int, stream: bytes, buffers: list[Any]) -> Any:
    """A value a proxy pickled as: plain, no longer a proxy."""
    # In-band buffers may arrive as bytes; the value's arrays must be writable as the sender's.
    own = [bytearray(b) if memoryview(b).readonly else b for b in buffers]
    return loads(encoding, stream, own)


class _FromTarget(str):
    """A class's ``__module__`` or ``__doc__`` that its instances take from their target.

    A string, the class's own value, wherever Python reads the class's (``repr(Proxy)``,
    pickling the class, ``help``); a descriptor for instances, which answer with the target's.
    """

    def __new__(cls, name: str, on_class: str) -> _FromTarget:
        value = super().__new__(cls, on_class)
        value.name = name
        return value

    def __get__(self, proxy: Any, owner: type | None = None) -> Any:
        if proxy is None:
            return str(self)
        return getattr(target_of(proxy), self.name)

    def __reduce__(self) -> tuple[type[str], tuple[str]]:
        return str, (str(self),)  # pickling the class writes its module name: a plain string


def _take_from_target(cls: type) -> None:
    """Instances of ``cls`` report their target's ``__module__`` and ``__doc__``."""
    cls.__module__ = _FromTarget("__module__", cls.__module__)
    cls.__doc__ = _FromTarget("__doc__", cls.__doc__ or "")


class Proxy(_native.ProxyBase):
    """A lazy reference to a value in a byref store.

    Behaves as its target: attribute access, operators (also between two proxies), ``len``,
    iteration, ``in``, comparisons, ``hash``, ``isinstance`` (through ``__class__``, and with a
    proxy of a class as the second argument), ``str``/``repr``, ``__module__``/``__doc__``,
    ``math.floor`` and friends, numpy interop, ``memoryview`` of targets with a buffer, and
    where the target has them, calls, ``os.fspath``, ``await``, ``async for`` and
    ``async with``. ``copy.copy``/``copy.deepcopy`` copy the current value.

    Pickles as its handle while unresolved, else as its current value (see the module's
    docstring and the README).
    """

    # Its state (handle, target, the target's class name, its lock) is the native base's:
    # ``Proxy(handle)``, ``Proxy(handle, target)`` or ``Proxy(handle, kind="module:qualname")``.
    __slots__ = ()

    #: The optional special methods this class defines (see `OPTIONAL_METHODS`).
    _byref_optional_methods = 0

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _take_from_target(cls)

    def __copy__(self) -> Any:
        return copy.copy(target_of(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return copy.deepcopy(target_of(self), memo)

    @property  # type: ignore[misc]
    def __class__(self) -> type:
        """The target's class: from the name stored with the proxy while unresolved."""
        target = object.__getattribute__(self, "_byref_target")
        if target is UNRESOLVED:
            kind = object.__getattribute__(self, "_byref_kind")
            cls = find_class(kind) if kind else None
            if cls is not None:
                return cls
            target = target_of(self)
        return type(target)

    def __instancecheck__(self, instance: Any) -> bool:
        return isinstance(instance, target_of(self))

    def __subclasscheck__(self, subclass: Any) -> bool:
        # A proxy of a class stands for that class on either side: `issubclass(p, p)`.
        if is_proxy(subclass):
            subclass = target_of(subclass)
        return issubclass(subclass, target_of(self))

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(target_of(self), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(target_of(self), name)

    def __dir__(self) -> list[str]:
        return dir(target_of(self))

    def __repr__(self) -> str:
        # Unresolved, a proxy describes itself rather than fetch: executors' logs call repr()
        # on every task argument (Parsl's HTEX at DEBUG, on by default), and fetching there
        # would pull each result a submitter passes on through it. (lazy-object-proxy, which
        # ProxyStore's proxies follow, does the same.) str() and print() show the value.
        if object.__getattribute__(self, "_byref_target") is UNRESOLVED:
            handle = _native.Handle.decode(object.__getattribute__(self, "_byref_handle"))
            kind = (object.__getattribute__(self, "_byref_kind") or "object").replace(":", ".")
            return f"<byref proxy of {kind}, {handle.length:,} bytes, key {handle.key[:12]}>"
        return repr(target_of(self))

    def __str__(self) -> str:
        return str(target_of(self))

    def __bytes__(self) -> bytes:
        return bytes(target_of(self))

    def __format__(self, spec: str) -> str:
        return format(target_of(self), spec)

    def __hash__(self) -> int:
        return hash(target_of(self))

    def __bool__(self) -> bool:
        return bool(target_of(self))

    def __len__(self) -> int:
        return len(target_of(self))

    def __iter__(self) -> Any:
        return iter(target_of(self))

    def __reversed__(self) -> Any:
        return reversed(target_of(self))

    def __next__(self) -> Any:
        return next(target_of(self))

    def __contains__(self, item: Any) -> bool:
        return item in target_of(self)

    def __getitem__(self, key: Any) -> Any:
        return target_of(self)[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        target_of(self)[key] = value

    def __delitem__(self, key: Any) -> None:
        del target_of(self)[key]

    def __enter__(self) -> Any:
        return target_of(self).__enter__()

    def __exit__(self, *exc: Any) -> Any:
        return target_of(self).__exit__(*exc)

    def __int__(self) -> int:
        return int(target_of(self))

    def __float__(self) -> float:
        return float(target_of(self))

    def __complex__(self) -> complex:
        return complex(target_of(self))

    def __index__(self) -> int:
        return operator.index(target_of(self))

    def __round__(self, *args: Any) -> Any:
        return round(target_of(self), *args)

    def __trunc__(self) -> Any:
        return math.trunc(target_of(self))

    def __floor__(self) -> Any:
        return math.floor(target_of(self))

    def __ceil__(self) -> Any:
        return math.ceil(target_of(self))

    def __pow__(self, other: Any, modulo: Any = None) -> Any:
        if modulo is None:
            return target_of(self) ** unwrap(other)
        return pow(target_of(self), unwrap(other), unwrap(modulo))

    def __rpow__(self, other: Any, modulo: Any = None) -> Any:
        if modulo is None:
            return unwrap(other) ** target_of(self)
        return pow(unwrap(other), target_of(self), unwrap(modulo))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy

        if copy:
            return numpy.array(target_of(self), dtype=dtype, copy=True)
        return numpy.asarray(target_of(self), dtype=dtype)


class CallableProxy(MIXINS[CALL], Proxy):  # type: ignore[misc, valid-type]
    """A proxy of a callable: ``callable()`` is true of a proxy exactly when of its target.

    Code such as Parsl's serializer picks a path by ``callable(obj)``, so a proxy of an array
    must not look callable.
    """

    __slots__ = ()
    _byref_optional_methods = CALL


forward_operators(Proxy)
_take_from_target(Proxy)  # its subclasses take them in `__init_subclass__`
_classes: dict[int, type[Proxy]] = {0: Proxy, CALL: CallableProxy}


def proxy_class(methods: int) -> type[Proxy]:
    """The proxy class defining exactly the optional special methods ``methods`` names."""
    cls = _classes.get(methods)
    if cls is None:
        # CallableProxy brings `__call__`: the other mixins go in front of it.
        base = CallableProxy if methods & CALL else Proxy
        others = methods & ~CALL
        mixins = tuple(mixin for bit, mixin in MIXINS.items() if others & bit)
        cls = type(
            base.__name__,
            (*mixins, base),
            {
                "__slots__": (),
                "_byref_optional_methods": methods,
                "__module__": __name__,
                "__doc__": base.__doc__,
            },
        )
        cls = _classes.setdefault(methods, cls)  # another thread may have made one
    return cls


#: The proxy class of each class of values proxied here: a plain dict (one lookup per proxy;
#: a weak one costs a weak reference per lookup), emptied when it reaches `_CLASSES_MAX`
#: classes, so that classes made on the fly are not kept for ever.
_class_for: dict[type, type[Proxy]] = {}
_CLASSES_MAX = 1024


def proxy_of(handle: _native.Handle, obj: Any, *, hold: bool) -> Proxy:
    """A proxy of ``obj``, just stored under ``handle``; holding ``obj`` itself if ``hold``."""
    cls = _class_for.get(type(obj))
    if cls is None:
        if len(_class_for) >= _CLASSES_MAX:
            _class_for.clear()
        cls = _class_for[type(obj)] = proxy_class(optional_methods_of(obj))
    if hold:
        return cls(handle, obj)
    return cls(handle, kind=class_name(type(obj)))


def resolve(proxy: Proxy) -> None:
    """Fetches the proxy's target now, if it has not been already."""
    target_of(proxy)


def is_resolved(proxy: Proxy) -> bool:
    """Whether the proxy's target has been fetched (or was never stored away)."""
    return object.__getattribute__(proxy, "_byref_target") is not UNRESOLVED


def extract(proxy: Proxy) -> Any:
    """The target itself, no longer behind a proxy."""
    return target_of(proxy)


def handle_of(proxy: Proxy) -> _native.Handle:
    """The decoded handle the proxy pickles as while it is unresolved or unchanged."""
    return _native.Handle.decode(object.__getattribute__(proxy, "_byref_handle"))
