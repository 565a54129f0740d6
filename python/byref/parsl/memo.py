"""Memoization and checkpointing keyed by content.

Parsl's ``id_for_memo`` is a ``singledispatch`` on ``obj.__class__``, and a proxy reports its
target's class, so a registration for ``Proxy`` itself would never be reached. Instead the
target classes are registered: buffers (numpy arrays, ``bytes``, ``bytearray``,
``memoryview``, which Parsl cannot memoize at all on its own) are keyed by their byref key, and
a class proxied by type, and Parsl's own containers (``list``, ``tuple``, ``dict``), get a
registration that keys their proxies by handle and passes plain instances on to whatever
handled that class before. A proxy and the plain value it stands for
pickle the same, so they get the same key: a task memoizes alike with or without byref.
"""

from __future__ import annotations

from typing import Any

from parsl.dataflow.memoization import id_for_memo

from ..proxy import is_proxy
from ..store import key_of

_registered: set[type] = set()


def _content_id(obj: Any, output_ref: bool = False) -> bytes:
    return b"byref:" + key_of(obj).encode()


def _proxy_aware(previous: Any) -> Any:
    def memo_id(obj: Any, output_ref: bool = False) -> bytes:
        if is_proxy(obj):
            return _content_id(obj)
        return previous(obj, output_ref=output_ref)

    return memo_id


def register(cls: type) -> None:
    """Lets Parsl memoize proxies of ``cls`` (and, for buffer types, plain values) by content."""
    if cls in _registered:
        return
    _registered.add(cls)
    if cls in _BUFFER_TYPES:
        id_for_memo.register(cls, _content_id)
    else:
        id_for_memo.register(cls, _proxy_aware(id_for_memo.dispatch(cls)))


def _buffer_types() -> tuple[type, ...]:
    try:
        import numpy
    except ImportError:
        return (bytes, bytearray, memoryview)
    return (bytes, bytearray, memoryview, numpy.ndarray)


_BUFFER_TYPES = _buffer_types()
# And the containers Parsl memoizes itself, whose handlers refuse anything whose type is not
# exactly theirs: a proxy of a list (a task's result passed on, say) would fail the task.
for _cls in (*_BUFFER_TYPES, list, tuple, dict):
    register(_cls)
