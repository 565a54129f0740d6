"""byref: pass large Python values by reference.

>>> import byref, numpy as np
>>> store = byref.Store()                  # $BYREF_URL, or a file store in ~/.cache/byref
>>> p = store.proxy(np.arange(10))         # pickles as a handle of under 100 bytes
>>> int(p.sum())                           # resolved on first use, zero-copy
45
"""

from . import errors
from ._native import __version__
from .arguments import DEFAULT_THRESHOLD, Policy
from .asynchronous import aresolve, prefetch
from .decorator import proxy_args
from .errors import (
    AuthenticationError,
    BackendError,
    ByrefError,
    ConfigError,
    DeserializationError,
    HandleError,
    IntegrityError,
    ObjectNotFound,
    SerializationError,
    StoreFull,
    WorkerImportError,
)
from .explain import Explanation, explain, explain_task
from .lifetimes import ContextLifetime, LeaseLifetime, Lifetime, ProcessLifetime
from .proxy import CallableProxy, Proxy, extract, handle_of, is_proxy, is_resolved, resolve
from .proxy import _p as _p  # what every pickled proxy names: byref._p, a short name
from .store import Store, default_url, key_of

__all__ = [
    "DEFAULT_THRESHOLD",
    "AuthenticationError",
    "BackendError",
    "ByrefError",
    "CallableProxy",
    "ConfigError",
    "ContextLifetime",
    "DeserializationError",
    "Explanation",
    "HandleError",
    "IntegrityError",
    "LeaseLifetime",
    "Lifetime",
    "ObjectNotFound",
    "Policy",
    "ProcessLifetime",
    "Proxy",
    "SerializationError",
    "Store",
    "StoreFull",
    "WorkerImportError",
    "__version__",
    "aresolve",
    "default_url",
    "errors",
    "explain",
    "explain_task",
    "extract",
    "handle_of",
    "is_proxy",
    "is_resolved",
    "key_of",
    "prefetch",
    "proxy_args",
    "resolve",
]
