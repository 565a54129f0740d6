"""Values to frames and back: pickle protocol 5 with every large buffer out-of-band.

Out-of-band buffers never pass through a Python ``bytes``: numpy arrays and
``PickleBuffer`` objects arrive through ``buffer_callback``; large ``bytes``, ``bytearray`` and
``memoryview`` objects (which pickle would copy into the stream) are taken aside by
``persistent_id``. Both kinds go, in the order pickling meets them, to Rust as buffer views.
Loading consumes them in the same order, so one list serves both.

Values plain pickle cannot handle — lambdas, closures, anything defined in ``__main__`` —
fall back to cloudpickle, still with out-of-band buffers.
"""

from __future__ import annotations

import io
import pickle
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import cloudpickle

from . import _native
from ._native import CLOUDPICKLE, PICKLE5, RAW
from .diagnose import naming_missing_imports, pickling_error, probe
from .errors import DeserializationError

#: ``bytes``/``bytearray`` objects at least this large go out-of-band (``memoryview`` objects
#: always do).
OUT_OF_BAND_MIN = 64 * 1024

_BUFFER_TYPES = (bytes, bytearray, memoryview)


class _NeedsCloudpickle(Exception):
    """Raised inside plain pickling for values a worker could not import by reference."""


def _defined_in_main(obj: Any) -> bool:
    if isinstance(obj, (type, types.FunctionType)):
        return getattr(obj, "__module__", None) == "__main__"
    return type(obj).__module__ == "__main__"


class _Buffers:
    """The out-of-band buffers of one dump, and the persistent ids that point into them."""

    def __init__(self) -> None:
        self.views: list[memoryview] = []
        self._seen: dict[int, tuple[int, Any]] = {}

    def add_pickle_buffer(self, buf: pickle.PickleBuffer) -> None:
        self.views.append(buf.raw())

    def persistent_id(self, obj: Any) -> Any:
        kind = type(obj)
        if kind not in _BUFFER_TYPES:
            return None
        view = obj if kind is memoryview else memoryview(obj)
        # Pickle cannot carry a memoryview at all (cloudpickle makes it bytes): every one goes
        # out-of-band, whatever its size; a non-contiguous one as a contiguous copy.
        if kind is not memoryview and view.nbytes < OUT_OF_BAND_MIN:
            return None
        seen = self._seen.get(id(obj))
        if seen is not None:
            return ("again", seen[0])
        # Keep obj alive so its id cannot be reused by another object during this dump.
        self._seen[id(obj)] = (len(self.views), obj)
        flat = view if view.c_contiguous else memoryview(view.tobytes())
        self.views.append(flat.cast("B") if flat.ndim != 1 or flat.format != "B" else flat)
        if kind is memoryview:
            return ("memoryview", view.format, view.shape)
        return (kind.__name__,)


# Values pickling meets most, which are neither buffers nor defined in ``__main__``: checked
# first, so that a value of many small parts costs one set lookup per part.
_PLAIN = frozenset({int, float, str, bool, type(None), tuple, list, dict, set, frozenset})


class _Pickler(pickle.Pickler):
    def __init__(self, file: io.BytesIO, buffers: _Buffers) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffers.add_pickle_buffer)
        self._buffers = buffers

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) in _PLAIN:
            return None
        if _defined_in_main(obj):
            raise _NeedsCloudpickle
        return self._buffers.persistent_id(obj)


class _CloudPickler(cloudpickle.Pickler):
    def __init__(self, file: io.BytesIO, buffers: _Buffers) -> None:
        super().__init__(file, protocol=5, buffer_callback=buffers.add_pickle_buffer)
        self._buffers = buffers

    def persistent_id(self, obj: Any) -> Any:
        return self._buffers.persistent_id(obj)


#: ``pickle.dumps(obj, protocol=5)`` if ``obj`` is a scalar, or a short dict, list, tuple or
#: set of scalars (pickled the same with or without byref's hooks), else None: a small value's
#: round trip is mostly this, so it is native (written as the C pickler writes it).
_plain_pickle = _native.plain_pickle


def dumps(obj: Any) -> tuple[int, bytes, list[memoryview]]:
    """Pickles ``obj``: returns (encoding, stream, out-of-band buffers)."""
    stream = _plain_pickle(obj)
    if stream is not None:
        return PICKLE5, stream, []
    buffers = _Buffers()
    stream = io.BytesIO()
    try:
        _Pickler(stream, buffers).dump(obj)
        return PICKLE5, stream.getvalue(), buffers.views
    except _NeedsCloudpickle:
        pass
    except (pickle.PicklingError, AttributeError, TypeError):
        pass
    buffers = _Buffers()
    stream = io.BytesIO()
    try:
        _CloudPickler(stream, buffers).dump(obj)
    except Exception as e:
        raise pickling_error(obj, "value", e, _cloudpickle_fails) from None
    return CLOUDPICKLE, stream.getvalue(), buffers.views


_cloudpickle_fails = probe(
    lambda file: cloudpickle.Pickler(file, protocol=5, buffer_callback=lambda _: None)
)


class _Unpickler(pickle.Unpickler):
    def __init__(self, stream: Any, buffers: Iterator[Any], seen: list[Any]) -> None:
        super().__init__(io.BytesIO(stream), buffers=buffers)
        self._buffers = buffers
        self._seen = seen

    def persistent_load(self, pid: Any) -> Any:
        # The stream may be anyone's (a key only proves the bytes are what the handle named):
        # every id is checked, and anything else is a malformed stream, not a crash.
        try:
            kind = pid[0]
            if kind == "again":
                return self._seen[pid[1]]
            buf = next(self._buffers)
            if kind == "bytes":
                value: Any = bytes(buf)  # bytes own their memory: this copy cannot be avoided.
            elif kind == "bytearray":
                value = bytearray(buf)
            elif kind == "memoryview":
                value = memoryview(buf).cast("B").cast(pid[1], pid[2])
            else:
                raise pickle.UnpicklingError(f"unknown out-of-band buffer id {kind!r}")
        except (TypeError, ValueError, IndexError, KeyError, StopIteration) as e:
            raise pickle.UnpicklingError(f"malformed out-of-band buffer id {pid!r}: {e}") from e
        self._seen[-1] = value
        return value


def loads(
    encoding: int,
    stream: Any,
    buffers: Sequence[Any],
    what: Callable[[], str] = lambda: "the stored value",
) -> Any:
    """Rebuilds a value from a frame's parts; buffers are used in place, not copied.

    A module or name missing in this process raises :class:`byref.WorkerImportError`, naming
    the module and ``what()`` was being loaded.
    """
    if encoding == RAW:
        if len(buffers) != 1:
            raise DeserializationError(f"{what()}: a raw frame of {len(buffers)} buffers, not 1")
        return memoryview(buffers[0])
    seen: list[Any] = []

    def feed() -> Iterator[Any]:
        for buf in buffers:
            seen.append(buf)
            yield buf

    with naming_missing_imports(what):
        try:
            if not buffers:
                # Nothing out of band, so no persistent ids (a stream that has one anyway
                # fails as malformed): the C unpickler by itself.
                return pickle.loads(stream)
            return _Unpickler(stream, feed(), seen).load()
        except (pickle.UnpicklingError, EOFError) as e:
            raise DeserializationError(f"{what()} does not unpickle: {e}") from e
