"""Parsl integration: large task arguments travel by reference.

Two ways in. A decorator, directly above ``@python_app``:

>>> @byref.parsl.proxy_args("file:///scratch/byref")
... @python_app
... def train(data, model): ...

or a serializer plugin, one call before submitting, with no change to any app:

>>> byref.parsl.install("file:///scratch/byref")

Either way buffers of at least 256 KiB (numpy arrays, ``bytes``, ``bytearray``,
``memoryview``) are stored once and cross to the workers as ~100-byte proxies, which resolve
(zero-copy where the store allows) when the task first touches them. Proxies memoize by
content, and a worker that lacks a module raises :class:`byref.WorkerImportError` naming it.
Errors raised here are also Parsl's own types (:mod:`byref.parsl.errors`).
"""

from . import errors, memo, remote_only
from .apps import proxy_args
from .arguments import DEFAULT_THRESHOLD, Policy
from .serializer import ByrefCallableSerializer, ByrefSerializer, install, uninstall

__all__ = [
    "DEFAULT_THRESHOLD",
    "ByrefCallableSerializer",
    "ByrefSerializer",
    "Policy",
    "errors",
    "install",
    "memo",
    "proxy_args",
    "remote_only",
    "uninstall",
]
