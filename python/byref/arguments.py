"""Which arguments travel by reference, and the swap of those for proxies."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import _native
from ._native import Handle
from .diagnose import walk
from .proxy import handle_of, is_proxy
from .store import Store

if TYPE_CHECKING:
    from .lifetimes import Lifetime

#: Arguments at least this large (in bytes) are proxied by default on a file or memory store;
#: a store's own default is :attr:`byref.Store.proxy_threshold` (decided with the store kinds,
#: in Rust: larger over a network). Measured on a real HTEX with every argument proxied
#: (`benches/parsl_throughput.py --crossover`, RESULTS-parsl-crossover.md): at 100 KiB
#: proxying lost as often as it won (0.83-1.47x), at 256 KiB it won on the file store and on
#: peer://, one task or 20 (1.02-1.57x), and at 1 MiB by 2.2-3.6x.
DEFAULT_THRESHOLD: int = _native.DEFAULT_PROXY_THRESHOLD


def nbytes(obj: Any) -> int | None:
    """The size of a buffer-like value, or None for other objects."""
    if isinstance(obj, (bytes, bytearray)):
        return len(obj)
    if isinstance(obj, memoryview):
        return obj.nbytes
    size = getattr(type(obj), "nbytes", None)  # numpy arrays, without importing numpy
    return obj.nbytes if size is not None and not isinstance(obj, type) else None


@dataclass(frozen=True)
class Policy:
    """Proxy buffers of at least ``threshold`` bytes, and any instance of ``types``; never
    an instance of ``keep`` (what an executor must see as it is, such as its futures)."""

    threshold: int = DEFAULT_THRESHOLD
    types: tuple[type, ...] = ()
    keep: tuple[type, ...] = ()

    def should_proxy(self, obj: Any) -> bool:
        if is_proxy(obj) or (self.keep and isinstance(obj, self.keep)):
            return False
        size = nbytes(obj)
        if size is not None and size >= self.threshold:
            return True
        return bool(self.types) and isinstance(obj, self.types)


def arguments(
    obj: Any, stop: Callable[[Any], bool], path: str = "value"
) -> Iterator[tuple[str, Any]]:
    """The one walk of a task's arguments (or result): ``obj``, then the items of the lists,
    tuples and dicts in it, each with its path (``value[1]['big']``) and each object once, by
    identity (as pickle and :func:`swap_selected` see it); never inside a value ``stop``
    selects (what is proxied travels whole)."""
    return walk(obj, path, lambda item: type(item) in (list, tuple, dict) and not stop(item))


def swap_selected(
    obj: Any,
    policy: Policy,
    swap: Callable[[Any], Any],
    memo: dict[int, tuple[Any, Any]] | None = None,
) -> Any:
    """``obj`` with each value ``policy`` selects replaced by ``swap(value)``, also inside
    lists, tuples and dicts (copied, never changed in place).

    Each object is swapped or copied once, by identity, as pickle keeps it: an object met
    twice (``[a, a]``, or ``f(a, a)`` through one ``memo``) becomes one proxy (or one copy)
    met twice, so a task that writes through one alias sees it through the other. ``memo``
    maps ``id(original)`` to ``(original, replacement)``; the original is kept in it so that
    its id cannot be reused by another object meanwhile.
    """
    if memo is None:
        memo = {}
    seen = memo.get(id(obj))
    if seen is not None:
        return seen[1]
    kind = type(obj)
    if policy.should_proxy(obj):
        new: Any = swap(obj)
    elif kind is list:
        # Registered before its items: a list that contains itself is copied, not recursed.
        new = []
        memo[id(obj)] = (obj, new)
        new.extend(swap_selected(x, policy, swap, memo) for x in obj)
    elif kind is tuple:
        new = tuple(swap_selected(x, policy, swap, memo) for x in obj)
    elif kind is dict:
        new = {}
        memo[id(obj)] = (obj, new)
        new.update((k, swap_selected(v, policy, swap, memo)) for k, v in obj.items())
    else:
        return obj
    memo[id(obj)] = (obj, new)
    return new


class Replacer:
    """Swaps the values a policy selects for proxies (:func:`swap_selected`).

    Remembers the handles it stored under, so that the caller can release them. Its proxies
    hold their value if ``hold`` (see :meth:`byref.Store.proxy`); what it stores belongs to
    ``lifetime``, released on first resolve if ``evict``.
    """

    def __init__(
        self,
        store: Store,
        policy: Policy,
        *,
        hold: bool,
        lifetime: Lifetime | None = None,
        evict: bool = False,
    ) -> None:
        self.store = store
        self.policy = policy
        self.hold = hold
        self.lifetime = lifetime
        self.evict = evict
        self.handles: list[Handle] = []
        # One memo for every call (a task's positional and keyword arguments): an object
        # passed twice is stored once and arrives as one object.
        self._memo: dict[int, tuple[Any, Any]] = {}

    def __call__(self, obj: Any) -> Any:
        return swap_selected(obj, self.policy, self._proxy, self._memo)

    def _proxy(self, obj: Any) -> Any:
        proxy = self.store.proxy(obj, evict=self.evict, hold=self.hold, lifetime=self.lifetime)
        self.handles.append(handle_of(proxy))
        return proxy
