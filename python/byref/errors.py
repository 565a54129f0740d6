"""The exceptions byref raises, all under :class:`ByrefError`.

Each carries only a message string, so it pickles with standard types and crosses a Parsl
worker boundary intact.
"""

from __future__ import annotations

import pickle


class ByrefError(Exception):
    """Base class of every exception byref raises."""

    def __str__(self) -> str:
        # KeyError (a base of ObjectNotFound) would quote the message.
        return Exception.__str__(self)


class ObjectNotFound(ByrefError, KeyError):
    """The object is not in the store: evicted, expired, or never there."""


class HandleError(ByrefError, ValueError):
    """Bytes that do not decode as a byref handle."""


class BackendError(ByrefError):
    """The store failed: I/O error, unreachable server, ..."""


class StoreFull(BackendError):
    """The store has no room for the object (disk full, memory limit)."""


class AuthenticationError(BackendError):
    """The store refused byref's credentials (password, key or token)."""


class IntegrityError(ByrefError):
    """A fetched object does not match its BLAKE3 key: corrupted in storage or transit."""


class ConfigError(ByrefError, ValueError):
    """A store URL, scheme or option byref does not understand."""


class SerializationError(ByrefError, pickle.PicklingError):
    """A value that cannot be pickled; the message says where in it the culprit sits.

    A ``PicklingError`` rather than pickle's ``TypeError``: Parsl's executors replace a
    ``TypeError`` from serialization with their own message, which would lose the location.
    """


class DeserializationError(ByrefError, pickle.UnpicklingError):
    """A stored value that does not load: its stream is truncated or not one byref wrote.

    Its key only proves the bytes are the ones the handle named, not that byref made them.
    """


class WorkerImportError(ByrefError, ImportError):
    """A pickled value refers to a module this process (typically a worker) cannot import."""


__all__ = [
    "AuthenticationError",
    "BackendError",
    "ByrefError",
    "ConfigError",
    "DeserializationError",
    "HandleError",
    "IntegrityError",
    "ObjectNotFound",
    "SerializationError",
    "StoreFull",
    "WorkerImportError",
]
