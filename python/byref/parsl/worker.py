"""What a worker runs in place of a task's function: the function, then its large results
stored for the run that submitted the task (the decorator's ``results=True``, the plugin's
default)."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dill

from ..arguments import Policy, Replacer
from ..diagnose import naming_missing_imports
from ..lifetimes import OnBehalf
from ..pickling import restore_for
from ..store import Store
from .errors import WorkerImportError
from .pickler import dumps_function


@dataclass(frozen=True)
class Results:
    """The run's store, and which results the worker stores there (none: ``policy`` None;
    a changed argument it returns is stored again all the same, for the run); ``carried``
    selects the buffers the function carries that go by reference, as arguments do.

    ``tag`` is the run's holder tag: results go on its behalf, each released on its first
    resolve unless the run takes it over as it arrives (:mod:`byref.parsl.run`), which it
    does, to release it once nothing there refers to it. ``None`` when the run checkpoints
    (results serve later runs): stored plainly, kept until ``byref gc --older-than``.
    """

    url: str
    policy: Policy | None
    carried: Policy
    tag: str | None


def _load_worker_side(pickled: bytes) -> WorkerSide:
    with naming_missing_imports("the task's function", WorkerImportError):
        func, results = dill.loads(pickled)
    return WorkerSide(func, results)


class WorkerSide:
    """What the worker runs in place of the app's function.

    It pickles the function itself, inside its own pickle, so that a worker missing the
    function's module gets a :class:`byref.WorkerImportError` naming it; and, when asked, it
    stores large results and returns proxies of them.
    """

    # The function lives in a slot, not in __dict__: Parsl's wrapper copies this object's
    # __dict__ into its own and pickles that as dill does, which would import the function's
    # module outside the translation below.
    __slots__ = ("__dict__", "_func", "_pickled", "_results")

    def __init__(self, func: Callable[..., Any], results: Results | None) -> None:
        self._func = func
        self._results = results
        self._pickled: bytes | None = None
        # Those it has: a callable object has no `__name__`, which Parsl's wrapper copies.
        for name in ("__module__", "__name__", "__qualname__", "__doc__"):
            if hasattr(func, name):
                self.__dict__[name] = getattr(func, name)

    @property
    def __wrapped__(self) -> Callable[..., Any]:
        return self._func

    @property
    def __signature__(self) -> inspect.Signature:
        return inspect.signature(self._func)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        results = self._results
        lifetime = None
        if results is not None and results.tag:
            lifetime = OnBehalf(Store(results.url), results.tag)
            # A proxied argument the task changes and returns is stored again as it is
            # pickled (after this returns): for the run, which releases it at its end.
            restore_for(results.url, lifetime.holder)
        value = self._func(*args, **kwargs)
        if results is not None and results.policy is not None:
            # Pickled at once as the task's result: no need to hold (and re-hash) the value.
            store = Store(results.url)
            evict = lifetime is not None
            value = Replacer(store, results.policy, hold=False, lifetime=lifetime, evict=evict)(
                value
            )
        return value

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickled once (the large buffers the function carries stored once, for the run):
        # one of these serves one run.
        if self._pickled is None:
            both = (self._func, self._results)
            results = self._results
            self._pickled = (
                dill.dumps(both)
                if results is None
                else dumps_function(both, Store(results.url), results.carried)
            )
        return _load_worker_side, (self._pickled,)
