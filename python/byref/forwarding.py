"""Special methods a proxy forwards to its target: operators on every proxy class, and the
optional ones (``__call__``, ``__fspath__``, the async protocols) only on the proxy classes of
targets whose class has them."""

from __future__ import annotations

import operator
import os
import weakref
from typing import Any

from .resolution import target_of, unwrap

# Special methods that only some targets have. A proxy class defines them only if its target's
# class does, so that checks such as `callable(p)`, `isinstance(p, os.PathLike)` or
# `inspect.isawaitable(p)` answer as for the target. Each is a bit in a proxy's methods.
# The first name of each is the one looked for on the target's class.
CALL, FSPATH, AWAIT, AITER, ANEXT, ACONTEXT = 1, 2, 4, 8, 16, 32
OPTIONAL_METHODS = {
    CALL: ("__call__",),
    FSPATH: ("__fspath__",),
    AWAIT: ("__await__",),
    AITER: ("__aiter__",),
    ANEXT: ("__anext__",),
    ACONTEXT: ("__aenter__", "__aexit__"),
}


#: Optional-method bits by class, worked out once per class (as `functools.singledispatch` caches
#: its dispatch): a proxy is made per stored value, most of them of a few classes.
_class_optional_methods: weakref.WeakKeyDictionary[type, int] = weakref.WeakKeyDictionary()


def optional_methods_of(obj: Any) -> int:
    """The optional special methods ``obj``'s class has, as optional-method bits."""
    cls = type(obj)
    bits = _class_optional_methods.get(cls)
    if bits is None:
        bits = _class_optional_methods.setdefault(cls, _optional_methods_of_class(cls))
    return bits


def _optional_methods_of_class(cls: type) -> int:
    # Looked up in the class's own namespace: `hasattr(cls, "__call__")` is true of any class.
    bits = sum(
        bit
        for bit, (name, *_) in OPTIONAL_METHODS.items()
        if any(name in c.__dict__ for c in cls.__mro__)
    )
    # A path as a string: `os.fspath` and `open` take a str or bytes as it is, and must take
    # its proxy too (they accept only real str/bytes or a `__fspath__`).
    return bits | (FSPATH if issubclass(cls, (str, bytes)) else 0)


def _comparison(op: Any) -> Any:
    def compare(self: Any, other: Any) -> Any:
        return op(target_of(self), unwrap(other))

    return compare


def _binary(op: Any) -> tuple[Any, Any]:
    def forward(self: Any, other: Any) -> Any:
        return op(target_of(self), unwrap(other))

    def reflected(self: Any, other: Any) -> Any:
        return op(unwrap(other), target_of(self))

    return forward, reflected


def _in_place(op: Any) -> Any:
    def update(self: Any, other: Any) -> Any:
        target = target_of(self)
        result = op(target, unwrap(other))
        # A mutable target changed in place: every alias of the proxy sees it, as of the value.
        # An immutable one gave a new value: only the name assigned to changes, so that name
        # gets the plain value and other aliases keep the proxy.
        return self if result is target else result

    return update


def _unary(op: Any) -> Any:
    def apply(self: Any) -> Any:
        return op(target_of(self))

    return apply


def forward_operators(cls: type) -> None:
    """Gives ``cls`` (the proxy class) the comparison, arithmetic and unary operators, each
    applied to the target (and to the other operand's target, if it is a proxy too)."""
    for name in ("lt", "le", "eq", "ne", "gt", "ge"):
        setattr(cls, f"__{name}__", _comparison(getattr(operator, name)))
    for name in (
        "add", "sub", "mul", "matmul", "truediv", "floordiv", "mod",
        "lshift", "rshift", "and", "xor", "or",
    ):  # fmt: skip
        op = getattr(operator, f"{name}_" if name in ("and", "or") else name)
        forward, reflected = _binary(op)
        setattr(cls, f"__{name}__", forward)
        setattr(cls, f"__r{name}__", reflected)
        setattr(cls, f"__i{name}__", _in_place(getattr(operator, f"i{name}")))
    for name, method in (
        ("__ipow__", _in_place(operator.ipow)),
        ("__divmod__", _binary(divmod)[0]),
        ("__rdivmod__", _binary(divmod)[1]),
    ):
        setattr(cls, name, method)
    for name in ("neg", "pos", "abs", "invert"):
        setattr(cls, f"__{name}__", _unary(getattr(operator, name)))


def _forwarding(name: str) -> Any:
    # Looked up on the target's type, as Python does for special methods: a proxy of a class
    # calls the class, not a `__call__` its instances have. `self` positional-only: a call may
    # pass a keyword argument named "self".
    def forward(self: Any, /, *args: Any, **kwargs: Any) -> Any:
        target = target_of(self)
        return getattr(type(target), name)(target, *args, **kwargs)

    forward.__name__ = forward.__qualname__ = name
    return forward


def _fspath(self: Any, /) -> Any:
    # The target's path: its `__fspath__`, or the target itself if it is a str or bytes.
    return os.fspath(target_of(self))


def _mixin(bit: int) -> type:
    """A class with optional-method ``bit``'s special methods, each forwarded to the target."""
    methods = {name: _forwarding(name) for name in OPTIONAL_METHODS[bit]}
    if bit == FSPATH:
        methods["__fspath__"] = _fspath
    return type(f"_Forwards{bit}", (), {"__slots__": (), **methods})


MIXINS = {bit: _mixin(bit) for bit in OPTIONAL_METHODS}
