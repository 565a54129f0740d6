"""A Parsl serializer plugin: every task's large buffers travel through byref.

>>> byref.parsl.install("file:///scratch/byref")   # before submitting tasks

Parsl serializes a task's function, positional and keyword arguments with the first
serializer in ``parsl.serialize.facade.methods_for_code`` / ``methods_for_data`` that works,
and writes that serializer's identifier (``module ClassName``) in front. A worker that does not
know the identifier imports the module and builds the class with no arguments: so the
deserializing side here needs nothing but what the proxies' handles carry.

Arguments are pickled by dill, as with Parsl's own serializer, but a ``reducer_override``
sees every object first: large buffers become proxies before dill's numpy reducer (which would
copy the array into the stream) is ever reached.
"""

from __future__ import annotations

import functools
import io
from typing import Any

import dill
from parsl.serialize import facade
from parsl.serialize.base import SerializerBase

from ..arguments import Policy
from ..diagnose import naming_missing_imports, pickling_error, probe
from ..errors import ConfigError
from ..store import Store
from . import remote_only, run
from .arguments import parsl_policy
from .errors import SerializationError, WorkerImportError
from .pickler import ProxyingPickler, dumps_function
from .run import checkpointing, run_lifetime
from .worker import Results, WorkerSide


class _ProbePickler(dill.Pickler):
    """Pickles like :class:`ProxyingPickler` without storing anything: to find failures."""

    def __init__(self, file: Any, policy: Policy) -> None:
        super().__init__(file)
        self._policy = policy

    def reducer_override(self, obj: Any) -> Any:
        return (bytes, ()) if self._policy.should_proxy(obj) else NotImplemented


def _loads(body: bytes, what: str) -> Any:
    with naming_missing_imports(what, WorkerImportError):
        return dill.loads(body)


class ByrefSerializer(SerializerBase):
    """Task arguments: large buffers as proxies, the rest as dill pickles them.

    On the submitting side :func:`install` builds it with a store; a worker builds it with no
    arguments, only to deserialize.
    """

    def __init__(
        self,
        store: Store | None = None,
        policy: Policy | None = None,
        *,
        evict: bool = True,
    ) -> None:
        self._store = store
        self._policy = policy or parsl_policy()
        self._evict = evict

    def serialize(self, data: Any) -> bytes:
        if self._store is None:
            raise ConfigError("this ByrefSerializer has no store: build it with install()")
        out = io.BytesIO()
        pickler = ProxyingPickler(out, self._store, self._policy, self._evict)
        try:
            pickler.dump(data)
        except Exception as e:
            for key in pickler.keys:  # stored before the failure: nobody will resolve them
                self._store.evict(key)
            # Parsl pickles the positional arguments as a tuple and the keywords as a dict.
            root = {tuple: "args", dict: "kwargs"}.get(type(data), "value")
            fails = probe(lambda file: _ProbePickler(file, self._policy))
            raise pickling_error(data, root, e, fails, SerializationError) from None
        return out.getvalue()

    def deserialize(self, payload: bytes) -> Any:
        return _loads(payload, "a task argument")


class ByrefCallableSerializer(SerializerBase):
    """Task functions, pickled by dill and cached as Parsl's own; a worker that cannot import
    a function's module raises :class:`byref.WorkerImportError` naming it.

    Built by :func:`install` with a store, the large buffers a function carries when dill
    pickles it by value (a closure's cells, ``functools.partial`` arguments, defaults, a bound
    method's object, globals of a function defined in ``__main__``) go to the store as the
    arguments' do, with the same threshold, for the run: stored once per function and run,
    however many tasks call it. With a ``results`` policy, the worker stores the large values
    a task returns the same way, for the run, and returns proxies of them.
    """

    def __init__(
        self,
        store: Store | None = None,
        policy: Policy | None = None,
        results: Policy | None = None,
    ) -> None:
        self._store = store
        self._policy = policy or parsl_policy()
        self._results = results

    def serialize(self, data: Any) -> bytes:
        # Per run: what a run stored goes at its end, and the next run stores it again.
        return self._pickled(data, run.ended)

    @functools.lru_cache  # noqa: B019 - as Parsl's: functions are few and live for the run
    def _pickled(self, data: Any, runs_ended: int) -> bytes:
        store = self._store
        if store is None:
            return dill.dumps(data)
        if self._results is None or isinstance(data, WorkerSide):
            # No results asked for, or a `proxy_args` app, which says what its worker does.
            return dumps_function(data, store, self._policy)
        # The worker stores (results, changed arguments it returns) for the run; a run that
        # checkpoints keeps its results for later runs: stored plainly.
        tag = None if checkpointing() else run_lifetime(store, results=True).tag
        return dill.dumps(WorkerSide(data, Results(store.url, self._results, self._policy, tag)))

    @functools.lru_cache  # noqa: B019
    def deserialize(self, payload: bytes) -> Any:
        return _loads(payload, "the task's function")


#: Parsl's tables as they were before :func:`install`, for :func:`uninstall`.
_saved: tuple[dict[bytes, SerializerBase], dict[bytes, SerializerBase]] | None = None


def install(
    store: Store | str | None = None,
    threshold: int | None = None,
    *,
    types: tuple[type, ...] = (),
    evict: bool = True,
    results: bool = True,
) -> ByrefSerializer:
    """Makes byref Parsl's serializer in this process, for every executor that uses Parsl's.

    Buffers of at least ``threshold`` bytes (default: the store's,
    :attr:`byref.Store.proxy_threshold`: 256 KiB for a file store, 512 KiB for Redis, 1 MiB
    for the daemon and ``peer://``), and instances of ``types``, anywhere in a task's
    arguments, go to ``store`` (a :class:`byref.Store` or URL; default ``Store()``) and travel
    as proxies. With ``evict=True`` (the default) each such object is released when the worker
    first resolves it: nothing else holds it, and a retried task is serialized afresh. What
    no worker resolved (a task that failed first) belongs to the Parsl run, and goes at
    ``dfk.cleanup()`` (or with ``byref gc --dead`` if this process is killed).

    With ``results=True`` (the default) a task's return value travels back the same way: the
    worker stores its large buffers for the run and returns proxies, which this process
    resolves only if the code touches them (Parsl's logging, ``repr()``, memoization and
    checkpointing do not), and which go on to later tasks as handles. Each such result is
    released once no future, proxy or pending task here refers to it, at the latest at
    ``dfk.cleanup()``: resolve (or copy) what must outlive the run. A run that checkpoints
    keeps its results for later runs (until ``byref gc --older-than``).
    :func:`uninstall` restores Parsl's serializers. A result or exception of a class only the
    workers can import fails its future with :class:`byref.parsl.errors.RemoteOnlyError`
    (:mod:`byref.parsl.remote_only`), where HTEX would hang.
    """
    global _saved
    opened = store if isinstance(store, Store) else Store(store)
    size = opened.proxy_threshold if threshold is None else threshold
    policy = parsl_policy(size, types)
    data = ByrefSerializer(opened, policy, evict=evict)
    # What a function carries goes by size alone: `types` name argument types.
    code = ByrefCallableSerializer(opened, parsl_policy(size), policy if results else None)
    if _saved is None:
        _saved = (dict(facade.methods_for_data), dict(facade.methods_for_code))
    # Parsl tries every registered serializer and reports the last one's error: byref must be
    # the only data serializer, so that its error (naming the argument that failed) is raised.
    facade.methods_for_data.clear()
    facade.methods_for_data[data.identifier] = data
    facade.methods_for_code.clear()
    facade.methods_for_code[code.identifier] = code
    # Workers send results back in Parsl's own format: its serializers stay here to decode
    # them, after byref's. Not in `additional_methods_for_deserialization`, which other set-ups
    # reset (Parsl's ProxyStore one does). Parsl tries them to pickle a function only if byref's
    # dill fails, and they fail alike, so they never change what is sent.
    for saved in _saved:
        for identifier, serializer in saved.items():
            facade.methods_for_code.setdefault(identifier, serializer)
    remote_only.guard()
    return data


def uninstall() -> None:
    """Restores exactly the serializers Parsl had before :func:`install`."""
    global _saved
    if _saved is None:
        return
    for live, saved in zip((facade.methods_for_data, facade.methods_for_code), _saved, strict=True):
        live.clear()
        live.update(saved)
    _saved = None


__all__ = ["ByrefCallableSerializer", "ByrefSerializer", "install", "uninstall"]
