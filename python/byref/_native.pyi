"""Type stubs for byref's Rust extension module."""

from collections.abc import Awaitable, Sequence
from typing import Any, Self, final

from typing_extensions import Buffer as _BufferProtocol
from typing_extensions import disjoint_base

__all__ = [
    "CLOUDPICKLE",
    "DEFAULT_PROXY_THRESHOLD",
    "INLINE_MAX",
    "PICKLE5",
    "RAW",
    "UNRESOLVED",
    "Buffer",
    "Frame",
    "GcPlan",
    "Handle",
    "Holder",
    "Inventory",
    "InventoryEntry",
    "ProxyBase",
    "Store",
    "__version__",
    "_p",
    "adopt",
    "class_name",
    "close_peers",
    "default_url",
    "get_file",
    "key_of",
    "parse_size",
    "plain_pickle",
    "put_file",
    "reduce_handle",
    "resolve",
    "resolve_async",
    "serve",
    "stat",
    "status",
    "target_of",
]

__version__: str

#: Frame encodings: a value's bytes as they are, a pickle (protocol 5), a cloudpickle.
RAW: int
PICKLE5: int
CLOUDPICKLE: int
DEFAULT_PROXY_THRESHOLD: int

@final
class Buffer:
    """A writable slice of this process's private copy of a fetched object (buffer protocol)."""

    def __len__(self) -> int: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...

@final
class Frame:
    """A fetched object split into what ``pickle.loads`` takes."""

    @property
    def encoding(self) -> int: ...
    @property
    def stream(self) -> Buffer: ...
    @property
    def buffers(self) -> list[Buffer]: ...

@final
class Handle:
    """What a pickled proxy carries."""

    @staticmethod
    def decode(data: bytes) -> Handle: ...
    def encode(self) -> bytes: ...
    @property
    def url(self) -> str: ...
    @property
    def key(self) -> str: ...
    @property
    def length(self) -> int: ...
    @property
    def evict(self) -> bool: ...

def default_url() -> str: ...

@final
class Store:
    """An open backend, shared per URL within a process."""

    def __new__(cls, url: str) -> Store: ...
    @staticmethod
    def for_handle(url: str) -> Store: ...
    @property
    def url(self) -> str: ...
    @property
    def proxy_threshold(self) -> int: ...
    def put(
        self,
        encoding: int,
        stream: _BufferProtocol,
        buffers: Sequence[_BufferProtocol],
        *,
        evict: bool = False,
        ttl: float | None = None,
        holder: Holder | None = None,
    ) -> Handle: ...
    def put_value(
        self,
        value: object,
        *,
        evict: bool = False,
        ttl: float | None = None,
        holder: Holder | None = None,
    ) -> Handle: ...
    def put_many(
        self,
        frames: Sequence[tuple[int, _BufferProtocol, Sequence[_BufferProtocol]]],
        *,
        evict: bool = False,
        ttl: float | None = None,
        holder: Holder | None = None,
    ) -> list[Handle]: ...
    def put_async(
        self,
        encoding: int,
        stream: _BufferProtocol,
        buffers: Sequence[_BufferProtocol],
        *,
        evict: bool = False,
        ttl: float | None = None,
        holder: Holder | None = None,
    ) -> Awaitable[Handle]: ...
    def get(self, key: str) -> Frame: ...
    def get_many(self, keys: Sequence[str]) -> list[Frame]: ...
    def get_async(self, key: str) -> Awaitable[Frame]: ...
    def exists(self, key: str) -> bool: ...
    def evict(self, key: str) -> bool: ...
    def inventory(self, kinds: bool = True) -> Inventory: ...
    def gc(self, plan: GcPlan) -> tuple[int, int]: ...
    def holder(
        self,
        kind: str = "process",
        label: str = "",
        lease: float | None = None,
        tag: str | None = None,
    ) -> Holder: ...

@final
class Holder:
    """Holds references in one store, released together (made by :meth:`Store.holder`)."""

    @property
    def tag(self) -> str: ...
    @property
    def record(self) -> str | None: ...
    def release(
        self, keys: Sequence[str] | None = None, sweep: bool = False
    ) -> tuple[int, int]: ...
    def extend(self, seconds: float) -> None: ...
    def start_adopting(self) -> None: ...
    def release_soon(self, key: str) -> None: ...

def adopt(handle: bytes) -> tuple[bytes, str, Holder] | None: ...

@final
class Inventory:
    """A store's objects and their holders, as listed at one moment."""

    def objects(self) -> list[InventoryEntry]: ...
    def holders(self) -> dict[str, tuple[str, str, str]]: ...
    def plan(
        self, dead: bool = False, older_than: float | None = None, holder: str | None = None
    ) -> GcPlan: ...

@final
class InventoryEntry:
    """One listed object."""

    @property
    def key(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def kind(self) -> str | None: ...
    @property
    def age(self) -> int | None: ...
    @property
    def holders(self) -> list[str]: ...
    @property
    def is_record(self) -> bool: ...

@final
class GcPlan:
    """What a collection would release, until applied."""

    @property
    def releases(self) -> list[tuple[str, str, str, str]]: ...
    @property
    def objects(self) -> int: ...
    @property
    def bytes(self) -> int: ...
    @property
    def unknown(self) -> dict[str, int]: ...

@disjoint_base
class ProxyBase:
    """Native base of ``byref.Proxy``: its state, and the target's buffer protocol."""

    def __new__(cls, handle: bytes | Handle, *target: object, kind: str | None = None) -> Self: ...
    def __buffer__(self, flags: int, /) -> memoryview: ...
    @property
    def _byref_handle(self) -> bytes: ...
    @property
    def _byref_target(self) -> Any: ...
    @property
    def _byref_kind(self) -> str | None: ...
    @property
    def _byref_owns_handle(self) -> bool: ...
    def _byref_adopt(self, target: Any) -> Any: ...
    def _byref_adopt_frame(self, frame: Frame) -> Any: ...
    def _byref_hand_on_once(self) -> None: ...
    def _byref_restored(self, handle: bytes, kind: str | None, owns: bool) -> None: ...
    def __reduce_ex__(self, protocol: object, /) -> tuple[Any, tuple[Any, ...]]: ...
    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]: ...

UNRESOLVED: object

def target_of(proxy: ProxyBase) -> Any: ...
def class_name(cls: type) -> str | None: ...
def plain_pickle(value: object) -> bytes | None: ...
def _p(handle: bytes, kind: int | str | None = None, methods: int = 0) -> ProxyBase: ...
def reduce_handle(handle: bytes, kind: str | None, methods: int) -> tuple[Any, tuple[Any, ...]]: ...

INLINE_MAX: int

def resolve(handle: bytes) -> Frame: ...
def resolve_async(handle: bytes) -> Awaitable[Frame]: ...
def key_of(encoding: int, stream: _BufferProtocol, buffers: Sequence[_BufferProtocol]) -> str: ...
def serve(
    listen: str,
    dir: str,
    memory_limit: int,
    disk_limit: int | None = None,
    metrics: str | None = None,
    max_connections: int = 1024,
) -> None: ...
def status(url: str) -> str: ...
def close_peers() -> None: ...
def parse_size(text: str) -> int: ...
def put_file(url: str, path: str, ttl: float | None = None) -> str: ...
def get_file(url: str, key: str, path: str | None = None) -> int: ...
def stat(url: str, key: str) -> tuple[int, str, int]: ...
