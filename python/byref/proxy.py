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
import importlib
import math
import operator
import os
import pickle
import threading
import weakref
from typing import Any

from . import _native
from .errors import BackendError
from .serialize import dumps, loads

_UNRESOLVED: Any = object()

#: Values whose frame is smaller than this travel inline when a proxy pickles as its value.
INLINE_MAX = 1 << 20

#: Types whose instances cannot change: a proxy of one never needs re-hashing to pickle.
_IMMUTABLE = (bytes, str, int, float, complex, bool, type(None), range)


def _label(handle: bytes) -> str:
    decoded = _native.Handle.decode(handle)
    return f"object {decoded.key} in {decoded.url}"


def _class_name(cls: type) -> str | None:
    """``module:qualname`` when that finds ``cls`` again, else None."""
    name = f"{cls.__module__}:{cls.__qualname__}"
    return name if "<" not in name else None


# The classes proxies most often stand for: a pickled proxy carries the class's index here
# (two bytes) instead of its name. Append only: a code means the same class in every version.
_COMMON_KINDS = (
    "builtins:dict",
    "builtins:list",
    "builtins:tuple",
    "builtins:str",
    "builtins:bytes",
    "builtins:bytearray",
    "builtins:int",
    "builtins:float",
    "builtins:set",
    "builtins:frozenset",
    "builtins:bool",
    "builtins:complex",
    "numpy:ndarray",
    "pandas.core.frame:DataFrame",
    "pandas.core.series:Series",
    "torch:Tensor",
    "xarray.core.dataarray:DataArray",
    "xarray.core.dataset:Dataset",
    "pyarrow.lib:Table",
    "polars.dataframe.frame:DataFrame",
    "collections:OrderedDict",
    "collections:defaultdict",
    "collections:deque",
)
_KIND_CODES = {name: code for code, name in enumerate(_COMMON_KINDS)}


def _kind_code(kind: str | None) -> int | str | None:
    """What a pickled proxy carries of its class name: a code for a common class."""
    return _KIND_CODES.get(kind, kind) if kind else None


def _kind_name(kind: int | str | None) -> str | None:
    """The class name a pickled proxy's ``kind`` stands for (a code of a newer byref: none)."""
    if isinstance(kind, int):
        return _COMMON_KINDS[kind] if 0 <= kind < len(_COMMON_KINDS) else None
    return kind


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


def _unwrap(obj: Any) -> Any:
    """The target of a proxy, anything else as it is: both operands of an operator."""
    return _target(obj) if is_proxy(obj) else obj


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
                raise naming_object(e, handle) from None
            target = adopt(proxy, frame)
    return target


def naming_object(error: BackendError, handle: bytes) -> BackendError:
    """``error`` naming the object too: the backend's message names only the store."""
    return type(error)(f"{error} (resolving {_native.Handle.decode(handle).key})")


def adopt(proxy: Proxy, frame: _native.Frame) -> Any:
    """Makes the value unpickled from ``frame``, fetched for ``proxy``, its target; called with
    the proxy's lock held, while it is unresolved."""
    handle = object.__getattribute__(proxy, "_byref_handle")
    target = loads(frame.encoding, frame.stream, frame.buffers, lambda: _label(handle))
    object.__setattr__(proxy, "_byref_target", target)
    # A fetched proxy's handle may have been released by this very resolve, and is the
    # sender's to hand on in any case: from now on this proxy travels as its value.
    object.__setattr__(proxy, "_byref_owns_handle", False)
    return target


# Special methods that only some targets have. A proxy class defines them only if its target's
# class does, so that checks such as `callable(p)`, `isinstance(p, os.PathLike)` or
# `inspect.isawaitable(p)` answer as for the target. Each is a bit in a proxy's capabilities.
# The first name of each is the one looked for on the target's class.
_CALL, _FSPATH, _AWAIT, _AITER, _ANEXT, _ACONTEXT = 1, 2, 4, 8, 16, 32
_CAPABILITY_METHODS = {
    _CALL: ("__call__",),
    _FSPATH: ("__fspath__",),
    _AWAIT: ("__await__",),
    _AITER: ("__aiter__",),
    _ANEXT: ("__anext__",),
    _ACONTEXT: ("__aenter__", "__aexit__"),
}


#: Capability bits by class, worked out once per class (as `functools.singledispatch` caches
#: its dispatch): a proxy is made per stored value, most of them of a few classes.
_class_capabilities: weakref.WeakKeyDictionary[type, int] = weakref.WeakKeyDictionary()


def capabilities_of(obj: Any) -> int:
    """The optional special methods ``obj``'s class has, as capability bits."""
    cls = type(obj)
    bits = _class_capabilities.get(cls)
    if bits is None:
        bits = _class_capabilities.setdefault(cls, _capabilities_of_class(cls))
    return bits


def _capabilities_of_class(cls: type) -> int:
    # Looked up in the class's own namespace: `hasattr(cls, "__call__")` is true of any class.
    bits = sum(
        bit
        for bit, (name, *_) in _CAPABILITY_METHODS.items()
        if any(name in c.__dict__ for c in cls.__mro__)
    )
    # A path as a string: `os.fspath` and `open` take a str or bytes as it is, and must take
    # its proxy too (they accept only real str/bytes or a `__fspath__`).
    return bits | (_FSPATH if issubclass(cls, (str, bytes)) else 0)


def _p(handle: bytes, kind: int | str | None = None, capabilities: int = 0) -> Proxy:
    """Rebuilds a proxy from the handle it pickled as (no I/O until first use).

    Every pickled proxy names this function, so its name is short: ``byref`` exports it, and
    it pickles as ``byref._p``.
    """
    cls = proxy_class(capabilities)
    adopted = _native.adopt(handle)
    if adopted is None:
        return cls(handle, kind=_kind_name(kind))
    # A result stored for a lifetime of this process (a Parsl run's), come back: the lifetime
    # now holds it, and releases it once no future, task or name here refers to this proxy.
    kept, key, holder = adopted
    proxy = cls(kept, kind=_kind_name(kind))
    weakref.finalize(proxy, holder.release_soon, key).atexit = False
    return proxy


_p.__module__ = "byref"


def _inline(encoding: int, stream: bytes, buffers: list[Any]) -> Any:
    """A value a proxy pickled as: plain, no longer a proxy."""
    # In-band buffers may arrive as bytes; the value's arrays must be writable as the sender's.
    own = [bytearray(b) if memoryview(b).readonly else b for b in buffers]
    return loads(encoding, stream, own)


def _reduce_handle(
    handle: bytes, kind: str | None, capabilities: int
) -> tuple[Any, tuple[Any, ...]]:
    """What pickles as an unresolved proxy of ``handle`` (no capabilities: two bytes fewer)."""
    code = _kind_code(kind)
    return _p, (handle, code, capabilities) if capabilities else (handle, code)


def _reduce_stored(handle: bytes, obj: Any) -> tuple[Any, tuple[Any, ...]]:
    """What pickles as a proxy of ``obj``, just stored under ``handle``."""
    return _reduce_handle(handle, _class_name(type(obj)), capabilities_of(obj))


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
        return getattr(_target(proxy), self.name)

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

    __slots__ = (
        "__weakref__",
        "_byref_handle",
        "_byref_kind",
        "_byref_lock",
        "_byref_owns_handle",
        "_byref_target",
    )

    #: The optional special methods this class defines (see `_CAPABILITY_METHODS`).
    _byref_capabilities = 0

    def __init__(self, handle: bytes, target: Any = _UNRESOLVED, kind: str | None = None) -> None:
        object.__setattr__(self, "_byref_handle", handle)
        object.__setattr__(self, "_byref_target", target)
        # The target's class, by name: pickled along, so that `isinstance` checks (Parsl makes
        # some on every result) answer without fetching the target.
        if kind is None and target is not _UNRESOLVED:
            kind = _class_name(type(target))
        object.__setattr__(self, "_byref_kind", kind)
        # Reentrant: pickling a target that contains its own proxy must fail, not hang.
        object.__setattr__(self, "_byref_lock", threading.RLock())
        # Whether pickling may hand on `handle` itself: true for a proxy made here with its
        # target (store.proxy) until a handle released on resolve has been handed on once.
        object.__setattr__(self, "_byref_owns_handle", target is not _UNRESOLVED)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _take_from_target(cls)

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
        get = object.__getattribute__
        with get(self, "_byref_lock"):
            handle = get(self, "_byref_handle")
            target = get(self, "_byref_target")
            if target is _UNRESOLVED:
                return _reduce_handle(handle, get(self, "_byref_kind"), self._byref_capabilities)
            return _reduce_value(self, target, protocol)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return self.__reduce_ex__(None)

    def __copy__(self) -> Any:
        return copy.copy(_target(self))

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        return copy.deepcopy(_target(self), memo)

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

    def __instancecheck__(self, instance: Any) -> bool:
        return isinstance(instance, _target(self))

    def __subclasscheck__(self, subclass: Any) -> bool:
        # A proxy of a class stands for that class on either side: `issubclass(p, p)`.
        if is_proxy(subclass):
            subclass = _target(subclass)
        return issubclass(subclass, _target(self))

    def __getattr__(self, name: str) -> Any:
        return getattr(_target(self), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_target(self), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(_target(self), name)

    def __dir__(self) -> list[str]:
        return dir(_target(self))

    def __repr__(self) -> str:
        # Unresolved, a proxy describes itself rather than fetch: executors' logs call repr()
        # on every task argument (Parsl's HTEX at DEBUG, on by default), and fetching there
        # would pull each result a submitter passes on through it. (lazy-object-proxy, which
        # ProxyStore's proxies follow, does the same.) str() and print() show the value.
        if object.__getattribute__(self, "_byref_target") is _UNRESOLVED:
            handle = _native.Handle.decode(object.__getattribute__(self, "_byref_handle"))
            kind = (object.__getattribute__(self, "_byref_kind") or "object").replace(":", ".")
            return f"<byref proxy of {kind}, {handle.length:,} bytes, key {handle.key[:12]}>"
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

    def __trunc__(self) -> Any:
        return math.trunc(_target(self))

    def __floor__(self) -> Any:
        return math.floor(_target(self))

    def __ceil__(self) -> Any:
        return math.ceil(_target(self))

    def __pow__(self, other: Any, modulo: Any = None) -> Any:
        if modulo is None:
            return _target(self) ** _unwrap(other)
        return pow(_target(self), _unwrap(other), _unwrap(modulo))

    def __rpow__(self, other: Any, modulo: Any = None) -> Any:
        if modulo is None:
            return _unwrap(other) ** _target(self)
        return pow(_unwrap(other), _target(self), _unwrap(modulo))

    def __array__(self, dtype: Any = None, copy: Any = None) -> Any:
        import numpy

        if copy:
            return numpy.array(_target(self), dtype=dtype, copy=True)
        return numpy.asarray(_target(self), dtype=dtype)


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


def _reduce_value(proxy: Proxy, target: Any, protocol: Any) -> tuple[Any, tuple[Any, ...]]:
    """Pickles a proxy holding its target as that target's current value (module docstring).

    Called with the proxy's lock held.
    """
    get = object.__getattribute__
    handle = get(proxy, "_byref_handle")
    decoded = _native.Handle.decode(handle)
    owns = get(proxy, "_byref_owns_handle")
    unchanged = owns and type(target) in _IMMUTABLE
    if not unchanged:
        encoding, stream, buffers = dumps(target)
        unchanged = owns and _native.key_of(encoding, stream, buffers) == decoded.key
    if unchanged:
        # Its own handle travels; one released on resolve goes only once.
        if decoded.evict:
            object.__setattr__(proxy, "_byref_owns_handle", False)
        return _reduce_handle(handle, get(proxy, "_byref_kind"), proxy._byref_capabilities)
    if len(stream) + sum(b.nbytes for b in buffers) < INLINE_MAX:
        in_band = protocol is not None and protocol >= 5
        parts = [pickle.PickleBuffer(b) if in_band else bytes(b) for b in buffers]
        return _inline, (encoding, stream, parts)
    # Stored again, with a fresh reference that is released on resolve if the old one was.
    holder = _restoring.get(decoded.url)
    # Opened as the handle's store, not the user's: a handle may come from anyone.
    fresh = _native.Store.for_handle(decoded.url).put(
        encoding, stream, buffers, evict=decoded.evict, holder=holder
    )
    fresh_handle = fresh.encode()
    object.__setattr__(proxy, "_byref_handle", fresh_handle)
    object.__setattr__(proxy, "_byref_kind", _class_name(type(target)))
    object.__setattr__(proxy, "_byref_owns_handle", not fresh.evict)
    return _reduce_stored(fresh_handle, target)


def _comparison(op: Any) -> Any:
    def compare(self: Proxy, other: Any) -> Any:
        return op(_target(self), _unwrap(other))

    return compare


def _binary(op: Any) -> tuple[Any, Any]:
    def forward(self: Proxy, other: Any) -> Any:
        return op(_target(self), _unwrap(other))

    def reflected(self: Proxy, other: Any) -> Any:
        return op(_unwrap(other), _target(self))

    return forward, reflected


def _in_place(op: Any) -> Any:
    def update(self: Proxy, other: Any) -> Any:
        target = _target(self)
        result = op(target, _unwrap(other))
        # A mutable target changed in place: every alias of the proxy sees it, as of the value.
        # An immutable one gave a new value: only the name assigned to changes, so that name
        # gets the plain value and other aliases keep the proxy.
        return self if result is target else result

    return update


def _unary(op: Any) -> Any:
    def apply(self: Proxy) -> Any:
        return op(_target(self))

    return apply


for _name in ("lt", "le", "eq", "ne", "gt", "ge"):
    setattr(Proxy, f"__{_name}__", _comparison(getattr(operator, _name)))
for _name in (
    "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod",
    "lshift", "rshift", "and", "xor", "or",
):  # fmt: skip
    _op = getattr(operator, f"{_name}_" if _name in ("and", "or") else _name)
    _fwd, _rev = _binary(_op)
    setattr(Proxy, f"__{_name}__", _fwd)
    setattr(Proxy, f"__r{_name}__", _rev)
    setattr(Proxy, f"__i{_name}__", _in_place(getattr(operator, f"i{_name}")))
Proxy.__ipow__ = _in_place(operator.ipow)
Proxy.__divmod__ = _binary(divmod)[0]
Proxy.__rdivmod__ = _binary(divmod)[1]
for _name in ("neg", "pos", "abs", "invert"):
    setattr(Proxy, f"__{_name}__", _unary(getattr(operator, _name)))
del _name, _op, _fwd, _rev


def _forwarding(name: str) -> Any:
    # Looked up on the target's type, as Python does for special methods: a proxy of a class
    # calls the class, not a `__call__` its instances have. `self` positional-only: a call may
    # pass a keyword argument named "self".
    def forward(self: Proxy, /, *args: Any, **kwargs: Any) -> Any:
        target = _target(self)
        return getattr(type(target), name)(target, *args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    return forward


def _fspath(self: Proxy, /) -> Any:
    # The target's path: its `__fspath__`, or the target itself if it is a str or bytes.
    return os.fspath(_target(self))


def _mixin(bit: int) -> type:
    """A class with capability ``bit``'s special methods, each forwarded to the target."""
    methods = {name: _forwarding(name) for name in _CAPABILITY_METHODS[bit]}
    if bit == _FSPATH:
        methods["__fspath__"] = _fspath
    return type(f"_Forwards{bit}", (), {"__slots__": (), **methods})


_MIXINS = {bit: _mixin(bit) for bit in _CAPABILITY_METHODS}


class CallableProxy(_MIXINS[_CALL], Proxy):  # type: ignore[misc]
    """A proxy of a callable: ``callable()`` is true of a proxy exactly when of its target.

    Code such as Parsl's serializer picks a path by ``callable(obj)``, so a proxy of an array
    must not look callable.
    """

    __slots__ = ()
    _byref_capabilities = _CALL


_take_from_target(Proxy)  # its subclasses take them in `__init_subclass__`
_classes: dict[int, type[Proxy]] = {0: Proxy, _CALL: CallableProxy}


def proxy_class(capabilities: int) -> type[Proxy]:
    """The proxy class defining exactly the optional special methods ``capabilities`` names."""
    cls = _classes.get(capabilities)
    if cls is None:
        # CallableProxy brings `__call__`: the other mixins go in front of it.
        base = CallableProxy if capabilities & _CALL else Proxy
        others = capabilities & ~_CALL
        mixins = tuple(mixin for bit, mixin in _MIXINS.items() if others & bit)
        cls = type(
            base.__name__,
            (*mixins, base),
            {
                "__slots__": (),
                "_byref_capabilities": capabilities,
                "__module__": __name__,
                "__doc__": base.__doc__,
            },
        )
        cls = _classes.setdefault(capabilities, cls)  # another thread may have made one
    return cls


def proxy_of(handle: bytes, obj: Any, *, hold: bool) -> Proxy:
    """A proxy of ``obj``, just stored under ``handle``; holding ``obj`` itself if ``hold``."""
    cls = proxy_class(capabilities_of(obj))
    if hold:
        return cls(handle, obj)
    return cls(handle, kind=_class_name(type(obj)))


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
    """The decoded handle the proxy pickles as while it is unresolved or unchanged."""
    return _native.Handle.decode(object.__getattribute__(proxy, "_byref_handle"))
