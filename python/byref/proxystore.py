"""A ProxyStore connector backed by any byref store: ProxyStore users switch in one line.

>>> from proxystore.store import Store
>>> import byref.proxystore
>>> store = Store("mine", byref.proxystore.Connector("redis://login1:6379"))

Everything built on ProxyStore's ``Store`` works unchanged (``store.proxy``, Parsl's
``ProxyStoreSerializer``, ProxyStore's executors), with the bytes in byref's store: file,
Redis, S3, the QUIC daemon or ``peer://``. Keys are byref's content addresses; each ``put``
adds a reference and each ``evict`` releases one, so equal objects put twice survive one evict.
The connector's configuration, which travels inside every ProxyStore proxy, is the store's
handle URL: no secret travels in it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from ._native import RAW
from .errors import ObjectNotFound
from .store import Store


class ByrefKey(NamedTuple):
    """The key of an object in a byref store (its BLAKE3 digest, in hex)."""

    key: str


class Connector:
    """ProxyStore's ``Connector`` protocol over the byref store ``url`` opens."""

    def __init__(self, url: str | None = None, **options: Any) -> None:
        self._store = Store(url, **options)

    def __repr__(self) -> str:
        return f"byref.proxystore.Connector({self._store.url!r})"

    def config(self) -> dict[str, Any]:
        """What rebuilds this connector anywhere: the store's URL as handles carry it."""
        return {"url": self._store.url}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Connector:
        return cls(config["url"])

    def close(self) -> None:
        """Nothing to close: the process's store stays open for other users of its URL."""

    def put(self, obj: bytes | bytearray | memoryview) -> ByrefKey:
        (key,) = self.put_batch([obj])
        return key

    def put_batch(self, objs: Sequence[bytes | bytearray | memoryview]) -> list[ByrefKey]:
        handles = self._store.native.put_many([(RAW, obj, []) for obj in objs])
        return [ByrefKey(h.key) for h in handles]

    def get(self, key: ByrefKey) -> memoryview | None:
        """The object's bytes (a view of this process's copy), or None if absent."""
        try:
            return memoryview(self._store.native.get(key.key).stream)
        except ObjectNotFound:
            return None

    def get_batch(self, keys: Sequence[ByrefKey]) -> list[memoryview | None]:
        try:
            return [
                memoryview(f.stream) for f in self._store.native.get_many([k.key for k in keys])
            ]
        except ObjectNotFound:
            return [self.get(k) for k in keys]  # which are missing: one at a time

    def exists(self, key: ByrefKey) -> bool:
        return self._store.exists(key.key)

    def evict(self, key: ByrefKey) -> None:
        """Releases one reference (the object is deleted with the last); an absent key is no
        error."""
        try:
            self._store.evict(key.key)
        except ObjectNotFound:
            pass
