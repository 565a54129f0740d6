"""``explain``: what a task's message will hold, and what will fail, before it is submitted.

Pickling trouble surfaces late: on the worker, as a ``ModuleNotFoundError`` for a function
pickled by reference, or at submission, as a message that names a type but not where it sits.
:func:`explain` walks a value (or a task's function and arguments) here and reports:

- what :func:`byref.proxy_args` would proxy (buffers in the arguments, and in lists, tuples and
  dicts in them), and the message's size with and without it;
- what cannot be pickled, by each pickler (pickle, cloudpickle, dill), with its path;
- functions and classes pickled by reference whose module the workers may lack (``__main__``,
  or a local file that is not an installed package), with the fix;
- exception types defined only in such modules.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
import sysconfig
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import cloudpickle

from .arguments import DEFAULT_THRESHOLD, Policy, arguments, nbytes, swap_selected
from .diagnose import Sink, probe, unpicklable_path, walk
from .proxy import is_proxy

#: What a proxy adds to a message, about: a file store's is at most 100 bytes (its store
#: named by an id); other stores' carry their URL, tens of bytes more.
HANDLE_BYTES = 100

#: Most objects looked at: a value larger than this is reported as far as it was walked.
MAX_OBJECTS = 100_000


@dataclass(frozen=True)
class Proxied:
    """A part of the value byref would store and send as a proxy."""

    path: str
    type: str
    nbytes: int


@dataclass(frozen=True)
class Unpicklable:
    """A part of the value a pickler cannot pickle."""

    pickler: str
    path: str
    error: str


@dataclass(frozen=True)
class ByReference:
    """A function, class or exception type pickled by reference to a module workers may lack."""

    path: str
    name: str
    module: str
    why: str
    fix: str
    exception: bool


@dataclass
class Explanation:
    """What :func:`explain` found. ``str()`` of it is the report."""

    root: str
    inline_bytes: int | None
    proxied_bytes: int | None
    proxied: list[Proxied] = field(default_factory=list)
    unpicklable: list[Unpicklable] = field(default_factory=list)
    by_reference: list[ByReference] = field(default_factory=list)
    truncated: bool = False

    @property
    def ok(self) -> bool:
        """Whether nothing was found that would fail."""
        return not self.unpicklable and not self.by_reference

    def __str__(self) -> str:
        lines = [f"byref explain: {self.root}"]
        if self.inline_bytes is not None:
            lines.append(f"  message, pickled inline: {_size(self.inline_bytes)}")
        if self.proxied_bytes is not None and self.proxied:
            lines.append(f"  message, with byref:     {_size(self.proxied_bytes)}")
        if self.proxied:
            lines.append(f"  byref would proxy {len(self.proxied)}:")
            lines += [f"    {p.path}: {p.type}, {_size(p.nbytes)}" for p in self.proxied]
        else:
            lines.append("  byref would proxy nothing (nothing reaches the threshold)")
        for u in self.unpicklable:
            lines.append(f"  cannot pickle with {u.pickler}: {u.path}: {u.error}")
        for r in self.by_reference:
            kind = "exception type" if r.exception else "pickled by reference"
            lines.append(f"  {kind}: {r.path} is {r.name} from module {r.module!r}: {r.why}")
            lines.append(f"    fix: {r.fix}")
        if self.truncated:
            lines.append(f"  (walked the first {MAX_OBJECTS:,} objects only)")
        if self.ok:
            lines.append("  no problem found")
        return "\n".join(lines)


def _size(n: int) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _picklers() -> dict[str, Callable[[Any], Any]]:
    """Each pickler installed here, as ``make(file) -> pickler``."""
    found: dict[str, Callable[[Any], Any]] = {
        "pickle": lambda file: pickle.Pickler(file, protocol=5),
        "cloudpickle": lambda file: cloudpickle.Pickler(file, protocol=5),
    }
    try:
        import dill
    except ImportError:
        return found
    found["dill"] = lambda file: dill.Pickler(file, protocol=5)
    return found


@cache
def _installed_top_levels() -> frozenset[str]:
    """Top-level modules of the installed distributions."""
    return frozenset(importlib.metadata.packages_distributions())


@cache
def _library_dirs() -> tuple[Path, ...]:
    paths = sysconfig.get_paths()
    names = ("stdlib", "platstdlib", "purelib", "platlib")
    return tuple(Path(paths[n]).resolve() for n in names if n in paths)


def _module_trouble(module_name: str) -> tuple[str, str] | None:
    """Why workers may fail to import ``module_name``, and what to do; None if they should not."""
    top = module_name.partition(".")[0]
    if module_name in ("__main__", "__mp_main__"):
        return (
            "defined in the submitting script: pickle sends it by reference, and workers run "
            "another __main__ (dill and cloudpickle send __main__'s by value)",
            "move it into a module the workers can import, or send it by value with "
            "cloudpickle or dill",
        )
    if top in sys.stdlib_module_names or top in sys.builtin_module_names:
        return None
    if top in _installed_top_levels():
        return None
    module = sys.modules.get(module_name)
    file = getattr(module, "__file__", None)
    if file is None:
        return None  # a namespace or built-in module: nothing local to point at
    path = Path(file).resolve()
    if any(path.is_relative_to(d) for d in _library_dirs()):
        return None
    return (
        f"a local file ({path}), not an installed package: every pickler sends it by "
        "reference, and workers import it only if that file is on their PYTHONPATH",
        f"install it as a package on the workers, put {path.parent} on their PYTHONPATH, or "
        f"send it by value: cloudpickle.register_pickle_by_value({module_name})",
    )


def _referenced(obj: Any) -> Iterator[type | types.FunctionType | types.BuiltinFunctionType]:
    """The functions and classes pickling ``obj`` names by module: itself if it is one,
    else its class."""
    if isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType)):
        yield obj
    elif not isinstance(obj, (types.ModuleType, types.MethodType)):
        yield type(obj)
    if isinstance(obj, types.MethodType):
        yield from _referenced(obj.__self__)
        yield obj.__func__


def _walk(obj: Any, root: str) -> Iterator[tuple[str, Any]]:
    """Every part of ``obj`` with its path, each object once, breadth-first. A proxy is not
    looked into: that would fetch it."""
    return walk(obj, root, lambda item: not is_proxy(item) and not isinstance(item, _OPAQUE))


#: What the walk does not look into: classes, functions and modules are pickled by name.
_OPAQUE = (type, types.FunctionType, types.ModuleType)


def explain(
    obj: Any,
    *,
    threshold: int = DEFAULT_THRESHOLD,
    types: tuple[type, ...] = (),
    root: str = "value",
) -> Explanation:
    """Reports what byref would proxy in ``obj`` and what would fail to pickle or to load on a
    worker; nothing is stored or sent. ``threshold`` and ``types`` as for
    :func:`byref.proxy_args`. ``print(byref.explain(x))`` shows the report."""
    policy = Policy(threshold, tuple(types))
    report = Explanation(root, None, None)
    report.proxied = list(_selected(obj, root, policy))
    reported: set[int] = set()
    for count, (path, item) in enumerate(_walk(obj, root)):
        if count >= MAX_OBJECTS:
            report.truncated = True
            break
        if policy.should_proxy(item) or is_proxy(item):
            continue
        for ref in _referenced(item):
            module = getattr(ref, "__module__", None)
            trouble = module and _module_trouble(module)
            if not trouble or id(ref) in reported:
                continue
            reported.add(id(ref))
            why, fix = trouble
            exception = isinstance(ref, type) and issubclass(ref, BaseException)
            if exception:
                why += "; raised on a worker, it cannot be unpickled where it is not defined"
            name = getattr(ref, "__qualname__", repr(ref))
            report.by_reference.append(ByReference(path, name, str(module), why, fix, exception))
    for name, make in _picklers().items():
        fails = probe(make)
        if fails(obj):
            error = _error(make, obj)
            report.unpicklable.append(Unpicklable(name, unpicklable_path(obj, root, fails), error))
    report.inline_bytes = _pickled_size(obj)
    # Each proxied value as a placeholder of a handle's size.
    report.proxied_bytes = _pickled_size(swap_selected(obj, policy, lambda _: bytes(HANDLE_BYTES)))
    return report


def explain_task(fn: Any, /, *args: Any, **kwargs: Any) -> Explanation:
    """:func:`explain` of a task: its function, positional and keyword arguments, as an
    executor would send them (``fn``, ``args[i]``, ``kwargs['name']``)."""
    report = explain((fn, args, kwargs), root="task")

    def rename(path: str) -> str:
        for old, new in (("task[0]", "fn"), ("task[1]", "args"), ("task[2]", "kwargs")):
            if path.startswith(old):
                return new + path[len(old) :]
        return path

    report.proxied = [Proxied(rename(p.path), p.type, p.nbytes) for p in report.proxied]
    report.unpicklable = [
        Unpicklable(u.pickler, rename(u.path), u.error) for u in report.unpicklable
    ]
    report.by_reference = [
        ByReference(rename(r.path), r.name, r.module, r.why, r.fix, r.exception)
        for r in report.by_reference
    ]
    report.root = f"task {getattr(fn, '__qualname__', repr(fn))}"
    return report


def _error(make: Callable[[Any], Any], obj: Any) -> str:
    try:
        make(Sink()).dump(obj)
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return "fails"


def _selected(obj: Any, path: str, policy: Policy) -> Iterator[Proxied]:
    """What :func:`byref.proxy_args` would proxy in ``obj``, shallowest first: an object met
    twice once, as it would be stored."""
    for where, item in arguments(obj, policy.should_proxy, path):
        if policy.should_proxy(item):
            yield Proxied(where, type(item).__qualname__, nbytes(item) or 0)


def _pickled_size(obj: Any) -> int | None:
    """The size of ``obj`` pickled by cloudpickle (in-band, as executors send it), counted
    without keeping the bytes; None if it does not pickle."""
    sink = Sink()
    try:
        cloudpickle.Pickler(sink, protocol=5).dump(obj)
    except Exception:
        return None
    return sink.written
