"""``proxy_args``: a decorator that sends an app's large arguments (and results) by reference."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dill
from parsl.app.python import PythonApp

from ..arguments import DEFAULT_THRESHOLD, Policy, Replacer
from ..decorator import submitting
from ..diagnose import naming_missing_imports
from ..errors import ConfigError
from ..lifetimes import OnBehalf
from ..proxy import restoring_holders
from ..store import Store
from . import memo, remote_only, run
from .arguments import parsl_policy
from .errors import WorkerImportError
from .run import checkpointing, run_lifetime
from .serializer import dumps_function

#: The keyword a task's call carries to the worker: the holder tag its results, and the values
#: it changes and returns, are stored with (the run's), so that the run's end releases them.
HOLDER_KEYWORD = "_byref_holder"


@dataclass(frozen=True)
class _Results:
    """The run's store, and which results the worker stores there (none: ``policy`` None;
    a changed argument it returns is stored again all the same, for the run); ``carried``
    selects the buffers the function carries that go by reference, as arguments do."""

    url: str
    policy: Policy | None
    carried: Policy


def _load_worker_side(pickled: bytes) -> _WorkerSide:
    with naming_missing_imports("the task's function", WorkerImportError):
        func, results = dill.loads(pickled)
    return _WorkerSide(func, results)


class _WorkerSide:
    """What the worker runs in place of the app's function.

    It pickles the function itself, inside its own pickle, so that a worker missing the
    function's module gets a :class:`byref.WorkerImportError` naming it; and, when asked, it
    stores large results and returns proxies of them.
    """

    # The function lives in a slot, not in __dict__: Parsl's wrapper copies this object's
    # __dict__ into its own and pickles that as dill does, which would import the function's
    # module outside the translation below.
    __slots__ = ("__dict__", "_func", "_pickled", "_results")

    def __init__(self, func: Callable[..., Any], results: _Results | None) -> None:
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
        tag = kwargs.pop(HOLDER_KEYWORD, None)
        results = self._results
        lifetime = None
        if results is not None and tag:
            lifetime = OnBehalf(Store(results.url), tag)
            # A proxied argument the task changes and returns is stored again as it is
            # pickled (after this returns): for the run, which releases it at its end.
            restoring_holders[results.url] = lifetime._native
        value = self._func(*args, **kwargs)
        if results is not None and results.policy is not None:
            # Pickled at once as the task's result: no need to hold (and re-hash) the value.
            store = Store(results.url)
            value = Replacer(store, results.policy, hold=False, lifetime=lifetime)(value)
        return value

    def __reduce__(self) -> tuple[Any, tuple[bytes]]:
        # Pickled once (the large buffers the function carries stored once, for the run):
        # one of these serves one run (see `proxy_args`).
        if self._pickled is None:
            both = (self._func, self._results)
            results = self._results
            self._pickled = (
                dill.dumps(both)
                if results is None
                else dumps_function(both, Store(results.url), results.carried)
            )
        return _load_worker_side, (self._pickled,)


def _rebuild(app: PythonApp, results: _Results) -> PythonApp:
    """The same app, running its function through :class:`_WorkerSide`."""
    func = app.func.__wrapped__  # PythonApp keeps the user's function under Parsl's error wrapper
    return PythonApp(
        _WorkerSide(func, results),
        data_flow_kernel=app.data_flow_kernel,
        executors=app.executors,
        cache=app.cache,
        # The run's holder tag differs from run to run: not part of what a task is.
        ignore_for_cache=[*(app.ignore_for_cache or []), HOLDER_KEYWORD],
        join=app.join,
    )


def proxy_args(
    store: Store | str | None = None,
    threshold: int = DEFAULT_THRESHOLD,
    *,
    types: tuple[type, ...] = (),
    release_on_completion: bool = True,
    results: bool = False,
    **removed: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator, directly above ``@python_app``: large arguments travel by reference.

    At submission, buffers (numpy arrays, ``bytes``, ``bytearray``, ``memoryview``) of at least
    ``threshold`` bytes, and instances of ``types``, are stored in ``store`` (a
    :class:`byref.Store` or a URL; default ``Store()``) and replaced by proxies, also inside
    lists, tuples and dicts. Futures, ``File`` objects and small values are left alone, so
    Parsl still sees every dependency.

    Everything it stores belongs to the Parsl run: it is released at ``dfk.cleanup()`` (the
    end of ``with parsl.load(config):``), or by ``byref gc --dead`` if the submitting process
    is killed. With ``release_on_completion=True`` (the default) each task's proxied inputs
    go as soon as its future completes (not on first resolve, as ``store.proxy(evict=True)``
    does, so Parsl's retries still find them), except those the task returned untouched.
    ``results=True`` makes the worker store large return values the same way and return
    proxies; they too are the run's, released at ``dfk.cleanup()``: resolve (or copy) what
    must outlive the run. A run that checkpoints keeps its results for later runs (until
    ``byref gc --older-than``).

    A worker that cannot import the app's module raises :class:`byref.WorkerImportError`; a
    result or exception of a class only the workers can import fails its future with
    :class:`byref.parsl.errors.RemoteOnlyError` (where HTEX would hang).
    """
    if "evict" in removed:
        raise TypeError(
            "proxy_args() takes release_on_completion=, not evict=: the inputs are released "
            "when the task completes, not on first resolve as with store.proxy(evict=True)"
        )
    if removed:
        raise TypeError(f"proxy_args() got an unexpected keyword argument {next(iter(removed))!r}")
    policy = parsl_policy(threshold, types)
    for cls in policy.types:
        memo.register(cls)

    def decorate(app: Callable[..., Any]) -> Callable[..., Any]:
        remote_only.guard()
        opened = store if isinstance(store, Store) else Store(store)
        target = app
        if results and not isinstance(app, PythonApp):
            raise ConfigError("results=True needs a @python_app directly below proxy_args")
        if isinstance(app, PythonApp):
            # One rebuilt app per run: Parsl caches a pickled function per function object,
            # and what the function carries by reference is the run's, gone at its end.
            per_run: dict[int, PythonApp] = {}
            # What the function carries goes by size alone: `types` name argument types.
            carried = dataclasses.replace(policy, types=())
            carry = _Results(opened.url, policy if results else None, carried)

            def target(*args: Any, **kwargs: Any) -> Any:
                inner = per_run.get(run.ended)
                if inner is None:
                    per_run.clear()
                    inner = per_run.setdefault(run.ended, _rebuild(app, carry))
                # What the worker stores (results, changed arguments it returns) is the run's,
                # swept at its end; checkpointed results serve later runs: stored plainly.
                tag = None if checkpointing() else run_lifetime(opened, results=True).tag
                return inner(*args, **kwargs, **{HOLDER_KEYWORD: tag})

        def lifetime() -> Any:
            return run_lifetime(opened, results=isinstance(app, PythonApp))

        proxied = submitting(target, opened, policy, release_on_completion, lifetime)
        return functools.wraps(app)(proxied)

    return decorate
