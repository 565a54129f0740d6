"""``proxy_args``: a decorator that sends an app's large arguments (and results) by reference."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any

from parsl.app.python import PythonApp

from ..decorator import submitting
from ..errors import ConfigError
from ..store import Store
from . import memo, remote_only, run
from .arguments import parsl_policy
from .run import checkpointing, run_lifetime
from .worker import Results, WorkerSide


def _rebuild(app: PythonApp, results: Results) -> PythonApp:
    """The same app, running its function through :class:`WorkerSide`."""
    func = app.func.__wrapped__  # PythonApp keeps the user's function under Parsl's error wrapper
    return PythonApp(
        WorkerSide(func, results),
        data_flow_kernel=app.data_flow_kernel,
        executors=app.executors,
        cache=app.cache,
        ignore_for_cache=app.ignore_for_cache,
        join=app.join,
    )


def proxy_args(
    store: Store | str | None = None,
    threshold: int | None = None,
    *,
    types: tuple[type, ...] = (),
    release_on_completion: bool = True,
    results: bool = False,
    **removed: Any,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator, directly above ``@python_app``: large arguments travel by reference.

    At submission, buffers (numpy arrays, ``bytes``, ``bytearray``, ``memoryview``) of at least
    ``threshold`` bytes (default: the store's, :attr:`byref.Store.proxy_threshold`), and
    instances of ``types``, are stored in ``store`` (a
    :class:`byref.Store` or a URL; default ``Store()``) and replaced by proxies, also inside
    lists, tuples and dicts. Futures, ``File`` objects and small values are left alone, so
    Parsl still sees every dependency.

    Everything it stores belongs to the Parsl run: it is released at ``dfk.cleanup()`` (the
    end of ``with parsl.load(config):``), or by ``byref gc --dead`` if the submitting process
    is killed. With ``release_on_completion=True`` (the default) each task's proxied inputs
    go as soon as its future completes (not on first resolve, as ``store.proxy(evict=True)``
    does, so Parsl's retries still find them), except those the task returned untouched.
    ``results=True`` makes the worker store large return values the same way and return
    proxies; they too are the run's, each released once no future, proxy or pending task of
    this process refers to it, at the latest at ``dfk.cleanup()``: resolve (or copy) what
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
    for cls in types:
        memo.register(cls)

    def decorate(app: Callable[..., Any]) -> Callable[..., Any]:
        remote_only.guard()
        opened = store if isinstance(store, Store) else Store(store)
        size = opened.proxy_threshold if threshold is None else threshold
        policy = parsl_policy(size, types)
        target = app
        if results and not isinstance(app, PythonApp):
            raise ConfigError("results=True needs a @python_app directly below proxy_args")
        if isinstance(app, PythonApp):
            # One rebuilt app per run: Parsl caches a pickled function per function object,
            # and what the function carries by reference is the run's, gone at its end.
            per_run: dict[int, PythonApp] = {}
            # What the function carries goes by size alone: `types` name argument types.
            carried = dataclasses.replace(policy, types=())
            results_policy = policy if results else None

            def target(*args: Any, **kwargs: Any) -> Any:
                inner = per_run.get(run.ended)
                if inner is None:
                    per_run.clear()
                    # What the worker stores (results, changed arguments it returns) is the
                    # run's; checkpointed results serve later runs: stored plainly.
                    tag = None if checkpointing() else run_lifetime(opened, results=True).tag
                    carry = Results(opened.url, results_policy, carried, tag)
                    inner = per_run.setdefault(run.ended, _rebuild(app, carry))
                return inner(*args, **kwargs)

        def lifetime() -> Any:
            return run_lifetime(opened, results=isinstance(app, PythonApp))

        proxied = submitting(target, opened, policy, release_on_completion, lifetime)
        return functools.wraps(app)(proxied)

    return decorate
