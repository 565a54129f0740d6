"""Stores: where proxied values live."""

from __future__ import annotations

import atexit
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode

from . import _native, inventory
from .errors import ConfigError
from .proxy import Proxy, extract, handle_of, is_proxy, is_resolved, proxy_of
from .serialize import dumps, loads

# A peer:// store serves from this process: when it exits, tell connected workers at once
# (instead of after their idle timeout) and remove its spill directory.
atexit.register(_native.close_peers)


def default_url() -> str:
    """``$BYREF_URL`` (the environment, else ``byref.env``), else a file store under the
    user's cache directory: the rule Rust applies, from Rust."""
    return _native.default_url()


class Holding(Protocol):
    """What a store needs of a :class:`byref.Lifetime` its puts are made for (the classes
    are in :mod:`byref.lifetimes`, which builds on this module)."""

    @property
    def closed(self) -> bool: ...

    @property
    def holder(self) -> _native.Holder: ...


def _holder(lifetime: Holding | None) -> _native.Holder | None:
    """What a put hands the native store: the lifetime's holder, checked open."""
    if lifetime is None:
        return None
    if lifetime.closed:
        raise ConfigError(f"{lifetime!r} is closed: nothing more can be stored in it")
    return lifetime.holder


@dataclass(frozen=True)
class Listed:
    """One stored object, as :meth:`Store.ls` shows it."""

    key: str
    size: int
    #: ``pickle``, ``cloudpickle``, ``bytes``, or ``holder`` for a holder's record.
    kind: str | None
    #: Seconds since its oldest reference was made.
    age: int | None
    #: The holder tag of each reference.
    holders: tuple[str, ...]


def _with_options(url: str, options: dict[str, Any]) -> str:
    if not options:
        return url
    text = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in options.items()}
    return url + ("&" if "?" in url else "?") + urlencode(text)


class Store:
    """A byref store, opened from a URL.

    ``Store()`` opens ``$BYREF_URL``, else a file store under the user's cache directory.
    Options are URL query options given as keywords: ``Store("file:///data", fsync=True)``.
    Every instance for one URL shares one open backend per process.

    ``Store("peer://")`` makes this process the store: it serves what it puts over QUIC, and
    its proxies resolve on workers by fetching straight from it, with no daemon. Its objects
    last as long as the process does.
    """

    def __init__(self, url: str | None = None, **options: Any) -> None:
        if url is not None and not isinstance(url, str):
            raise ConfigError(f"a store URL is a string, not {type(url).__name__}")
        self._native: _native.Store | None = _native.Store(
            _with_options(url or default_url(), options)
        )

    @property
    def native(self) -> _native.Store:
        """The extension's store this one wraps (for byref's own modules: the Parsl plugin,
        the ProxyStore connector, the command line)."""
        if self._native is None:
            raise ConfigError("this Store is closed")
        return self._native

    @property
    def url(self) -> str:
        """The URL handles carry: opens this store anywhere."""
        return self.native.url

    @property
    def proxy_threshold(self) -> int:
        """Buffers of at least this many bytes are proxied by default on this store: where
        proxying starts to beat sending them inline, by store kind (256 KiB on file and
        memory stores, 512 KiB on Redis, 1 MiB over QUIC, 4 MiB on S3)."""
        return self.native.proxy_threshold

    def put(self, obj: Any, *, ttl: float | None = None, lifetime: Holding | None = None) -> str:
        """Stores ``obj`` and returns its key (the BLAKE3 digest of the stored bytes).

        ``ttl`` (seconds) deletes the object after that long, on stores with expiry (Redis);
        others raise :class:`byref.ConfigError`. With a ``lifetime``
        (:class:`byref.ContextLifetime`, ...), the object is released when it ends; without,
        it stays until evicted or collected (``byref gc``).
        """
        # Pickled as `dumps` pickles it: natively for a flat and plain value.
        return self.native.put_value(obj, ttl=ttl, holder=_holder(lifetime)).key

    def get(self, key: str) -> Any:
        """The value stored under ``key``; :class:`byref.ObjectNotFound` if absent."""
        return self._load(key, self.native.get(key))

    def proxy(
        self,
        obj: Any,
        *,
        evict: bool = False,
        ttl: float | None = None,
        hold: bool = True,
        lifetime: Holding | None = None,
    ) -> Proxy:
        """Stores ``obj`` and returns a proxy whose pickle is a ~100-byte handle.

        With ``evict=True`` the stored object is released on its first resolve, so a second
        resolve raises :class:`byref.ObjectNotFound`. ``ttl`` and ``lifetime`` as for
        :meth:`put`.

        The proxy holds ``obj`` itself (``hold=True``): used here it is ``obj``, and when it
        is pickled, a change made to ``obj`` since is caught by hashing it again (one hash, no
        write when unchanged) and travels. With ``hold=False`` it keeps only the handle: it
        pickles with no hashing and resolves from the store if used here.
        """
        # The small path: the store (`native` raises once closed) and the holder without a
        # Python call each.
        holder = None if lifetime is None else _holder(lifetime)
        native = self._native or self.native
        handle = native.put_value(obj, evict=evict, ttl=ttl, holder=holder)
        return proxy_of(handle, obj, hold=hold)

    def put_many(
        self, objs: Iterable[Any], *, ttl: float | None = None, lifetime: Holding | None = None
    ) -> list[str]:
        """Stores each of ``objs`` (many stored at once) and returns their keys, in order."""
        return [h.key for h in self._put_many(objs, evict=False, ttl=ttl, lifetime=lifetime)]

    def get_many(self, keys: Iterable[str]) -> list[Any]:
        """The values stored under ``keys`` (many fetched at once), in order."""
        keys = list(keys)
        frames = self.native.get_many(keys)
        return [self._load(key, frame) for key, frame in zip(keys, frames, strict=True)]

    def proxy_many(
        self,
        objs: Iterable[Any],
        *,
        evict: bool = False,
        ttl: float | None = None,
        hold: bool = True,
        lifetime: Holding | None = None,
    ) -> list[Proxy]:
        """:meth:`proxy` of each of ``objs``, stored many at once."""
        objs = list(objs)
        handles = self._put_many(objs, evict=evict, ttl=ttl, lifetime=lifetime)
        return [proxy_of(h, o, hold=hold) for h, o in zip(handles, objs, strict=True)]

    async def aput(
        self, obj: Any, *, ttl: float | None = None, lifetime: Holding | None = None
    ) -> str:
        """:meth:`put`, awaitable: the write runs on byref's runtime, the GIL released."""
        return (await self._aput(obj, evict=False, ttl=ttl, lifetime=lifetime)).key

    async def aget(self, key: str) -> Any:
        """:meth:`get`, awaitable: the fetch runs on byref's runtime, the GIL released."""
        return self._load(key, await self.native.get_async(key))

    async def aproxy(
        self,
        obj: Any,
        *,
        evict: bool = False,
        ttl: float | None = None,
        hold: bool = True,
        lifetime: Holding | None = None,
    ) -> Proxy:
        """:meth:`proxy`, awaitable: the write runs on byref's runtime, the GIL released."""
        handle = await self._aput(obj, evict=evict, ttl=ttl, lifetime=lifetime)
        return proxy_of(handle, obj, hold=hold)

    def _put_many(
        self, objs: Iterable[Any], evict: bool, ttl: float | None, lifetime: Holding | None
    ) -> list[Any]:
        frames = [dumps(o) for o in objs]
        return self.native.put_many(frames, evict=evict, ttl=ttl, holder=_holder(lifetime))

    async def _aput(
        self, obj: Any, evict: bool, ttl: float | None, lifetime: Holding | None
    ) -> _native.Handle:
        encoding, stream, buffers = dumps(obj)
        holder = _holder(lifetime)
        return await self.native.put_async(
            encoding, stream, buffers, evict=evict, ttl=ttl, holder=holder
        )

    def _load(self, key: str, frame: _native.Frame) -> Any:
        return loads(
            frame.encoding, frame.stream, frame.buffers, lambda: f"object {key} in {self.url}"
        )

    def exists(self, key: str) -> bool:
        """Whether ``key`` is stored."""
        return self.native.exists(key)

    def evict(self, key: str) -> bool:
        """Releases one reference to ``key`` (ProxyStore's name for it: evict); returns whether
        that deleted the object.

        Equal values share one stored object, counted once per ``put``/``proxy``: the object
        goes when the last reference does.
        """
        return self.native.evict(key)

    def ls(self, *, kinds: bool = True) -> list[Listed]:
        """Every stored object: key, size, kind (read from its first bytes, unless
        ``kinds=False``), age and holders. Holder records are listed too (kind ``holder``)."""
        listing = self.native.inventory(kinds)
        return [Listed(e.key, e.size, e.kind, e.age, tuple(e.holders)) for e in listing.objects()]

    def stats(self) -> dict[str, Any]:
        """Totals (``objects``, ``bytes``, ``references``) and, under ``holders``, each holder
        by tag: its record (``kind``, ``label``, ``host``, ``pid``...), its ``state`` as
        judged from here (``alive``, ``gone``, ``unknown``), and what it holds."""
        return inventory.stats(self.native.inventory(False))

    def gc(
        self,
        *,
        dead: bool = False,
        older_than: float | None = None,
        holder: str | None = None,
        dry_run: bool = True,
    ) -> dict[str, Any]:
        """Releases references nobody live holds; objects are deleted with their last.

        ``dead``: those of holders that are gone (processes exited or killed on this host,
        leases past their end, holders with no record). ``older_than``: those made more than
        that many seconds ago, whoever holds them. ``holder``: all of one holder's (a tag).
        A dry run by default: says what it would release; ``dry_run=False`` releases it. Holders on
        other hosts cannot be checked from here, and are kept (counted under ``unknown``).
        """
        return inventory.collect(self.native, dead, older_than, holder, dry_run)

    def close(self) -> None:
        """Stops using this store object (the process's shared backend stays open)."""
        self._native = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store({self.url!r})" if self._native else "Store(<closed>)"


def key_of(obj: Any) -> str:
    """The key ``obj`` has (or would have) in any store, without storing it.

    The BLAKE3 digest of the bytes a ``put`` would write; for an unresolved proxy, its handle's
    key, and for a resolved one, its current value's. Equal values pickle the same and so share
    a key: what memoization keys a task's inputs by.
    """
    if is_proxy(obj):
        if not is_resolved(obj):
            return handle_of(obj).key
        obj = extract(obj)
    return _native.key_of(*dumps(obj))
