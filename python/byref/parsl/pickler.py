"""The one dill pickler of byref's Parsl layer: large buffers become proxies as it meets them."""

from __future__ import annotations

import io
import types
from typing import Any

import dill

from ..arguments import Policy
from ..proxy import handle_of, is_proxy, is_resolved, resolve
from ..store import Store
from .run import run_lifetime


class ProxyingPickler(dill.Pickler):
    """dill, with each value ``policy`` selects stored in ``store`` for the run (released on
    first resolve if ``evict``) and pickled as its proxy; ``keys`` lists what it stored."""

    def __init__(self, file: Any, store: Store, policy: Policy, evict: bool) -> None:
        super().__init__(file)
        self._store = store
        self._policy = policy
        self._evict = evict
        self.keys: list[str] = []
        # The bytes a proxy pickles as (its handle), by id, kept alive while pickling: never
        # proxied themselves, whatever the threshold (a threshold under a handle's length
        # proxied each proxy's handle, which proxied its handle, without end).
        self._reduced: dict[int, bytes] = {}

    def reducer_override(self, obj: Any) -> Any:
        if id(obj) in self._reduced:
            return NotImplemented
        if isinstance(obj, types.CodeType):
            # A function pickled by value: its code's bytes (bytecode, line tables) are not
            # data, and go whole, pickled by dill, however small the threshold.
            pickled = dill.dumps(obj)
            self._reduced[id(pickled)] = pickled
            return dill.loads, (pickled,)
        if self._policy.should_proxy(obj):
            # Not holding `obj`: an unresolved proxy pickles as its handle, with no hashing.
            lifetime = run_lifetime(self._store)
            proxy = self._store.proxy(obj, evict=self._evict, hold=False, lifetime=lifetime)
            self.keys.append(handle_of(proxy).key)
            return self._reduce(proxy)
        if is_proxy(obj):
            if not is_resolved(obj) and handle_of(obj).evict:
                # A proxy released on its first resolve going on to a task (one the user made
                # with evict=True; a task's result is the run's, adopted as it arrives, and
                # releases nothing). It may feed several tasks, and its one reference can
                # serve only one: so it is resolved here and goes as its value, stored again
                # with a reference per task.
                resolve(obj)
            return self._reduce(obj)
        return NotImplemented

    def _reduce(self, proxy: Any) -> Any:
        reduced = proxy.__reduce_ex__(None)
        for part in reduced[1]:
            if isinstance(part, bytes):
                self._reduced[id(part)] = part
        return reduced


def dumps_function(func: Any, store: Store, policy: Policy) -> bytes:
    """``func`` pickled by dill, with the large buffers it carries by value (as ``policy``
    selects) stored in ``store`` for the run and pickled as proxies: not released on first
    resolve, since every task calling the function resolves them."""
    out = io.BytesIO()
    ProxyingPickler(out, store, policy, evict=False).dump(func)
    return out.getvalue()
