"""Errors that say where: the part of a value that cannot be pickled, the module a loader lacks.

Pickle's own messages name a type ("cannot pickle '_thread.lock' object") but not where it
sits in a task's arguments, and an unpickling process that lacks a module raises a bare
``ModuleNotFoundError`` far from the code that caused it. These helpers turn both into byref
errors that point at the culprit.
"""

from __future__ import annotations

import socket
import sys
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from .errors import SerializationError, WorkerImportError

#: How deep to look for the unpicklable part; deeper paths are reported at this depth.
_MAX_DEPTH = 64


def children(obj: Any, path: str) -> Iterator[tuple[str, Any]]:
    """The parts of `obj` pickling descends into, each with its path below `path`."""
    kind = type(obj)
    if kind in (list, tuple):
        for i, item in enumerate(obj):
            yield f"{path}[{i}]", item
    elif kind is dict:
        for key, value in obj.items():
            yield f"{path}[{key!r}]", value
    elif kind in (set, frozenset):
        for item in obj:
            yield f"{path}{{{item!r}}}", item
    else:
        state = getattr(obj, "__dict__", None)
        if isinstance(state, dict):
            for name, value in state.items():
                yield f"{path}.{name}", value
        for cls in kind.__mro__:
            for name in getattr(cls, "__slots__", ()):
                if name not in ("__dict__", "__weakref__") and hasattr(obj, name):
                    yield f"{path}.{name}", getattr(obj, name)


def walk(obj: Any, root: str, descend: Callable[[Any], bool]) -> Iterator[tuple[str, Any]]:
    """``obj`` and the parts of it (:func:`children`) that ``descend`` lets the walk into,
    each with its path below ``root``, each object once (by identity), shallowest first."""
    seen: set[int] = set()
    queue = deque([(root, obj)])
    while queue:
        path, item = queue.popleft()
        if id(item) in seen:
            continue
        seen.add(id(item))
        yield path, item
        if descend(item):
            queue.extend(children(item, path))


def unpicklable_path(obj: Any, root: str, fails: Callable[[Any], bool]) -> str:
    """The deepest path below ``root`` to a part of ``obj`` that ``fails`` to pickle.

    ``obj`` itself is known to fail. Descends into lists, tuples, dicts, sets and object
    attributes, following the first failing child each time.
    """
    path, seen = root, {id(obj)}
    for _ in range(_MAX_DEPTH):
        for child_path, child in children(obj, path):
            if id(child) not in seen and fails(child):
                obj, path = child, child_path
                seen.add(id(child))
                break
        else:
            return path
    return path


class Sink:
    """A file that counts what is written and keeps none of it: a probe needs only success or
    failure, a size only the count."""

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: Any) -> int:
        n = memoryview(data).nbytes  # large buffers come as PickleBuffers, which lack len
        self.written += n
        return n


def probe(make_pickler: Callable[[Any], Any]) -> Callable[[Any], bool]:
    """A test of whether a value fails to pickle with the pickler ``make_pickler(file)``
    builds; nothing is kept of what it writes."""

    def fails(obj: Any) -> bool:
        try:
            make_pickler(Sink()).dump(obj)
        except Exception:
            return True
        return False

    return fails


def pickling_error(
    obj: Any,
    root: str,
    error: BaseException,
    fails: Callable[[Any], bool],
    raising: type[SerializationError] = SerializationError,
) -> SerializationError:
    """A :class:`SerializationError` (or subclass ``raising``) naming where in ``obj`` pickling
    failed, and why."""
    path = unpicklable_path(obj, root, fails)
    return raising(f"cannot pickle {path}: {error}")


def _where() -> str:
    return f"{socket.gethostname()}, {sys.executable}"


@contextmanager
def naming_missing_imports(
    what: str | Callable[[], str], raising: type[WorkerImportError] = WorkerImportError
) -> Iterator[None]:
    """Turns an unpickling failure caused by a missing module or name, inside the block, into
    a :class:`WorkerImportError` (or subclass ``raising``) naming it; ``what`` (or ``what()``)
    says what was loading."""
    try:
        yield
    except (ModuleNotFoundError, AttributeError) as e:
        error = import_error(e, what if isinstance(what, str) else what(), raising)
        if error is None:
            raise
        raise error from None


def import_error(
    error: BaseException, what: str, raising: type[WorkerImportError] = WorkerImportError
) -> WorkerImportError | None:
    """The byref error for an unpickling ``error`` caused by a missing module or name.

    ``what`` says what was being loaded (for example "the task's function"); ``raising`` is the
    class to build. Returns None for other errors.
    """
    if isinstance(error, ModuleNotFoundError) and error.name:
        return raising(
            f"{what} refers to module {error.name!r}, which cannot be imported here "
            f"({_where()}): it must be importable on the workers as well as where the task "
            "was submitted; install it there or add its directory to the workers' PYTHONPATH"
        )
    if isinstance(error, AttributeError) and str(error).startswith("Can't get attribute"):
        return raising(
            f"{what} refers to a name its module lacks here ({_where()}): {error}; the "
            "workers must import the same version of that module as the submitting side"
        )
    return None
