"""byref's errors as a Parsl user meets them: :mod:`byref.errors` re-exported, with the three
that cross Parsl's serialization also of Parsl's own types, so that code catching Parsl's
exceptions catches these.

Each of those is still a :class:`byref.ByrefError` (the first base, whose message is the one
shown) and pickles with standard types: a message string and two string attributes.
"""

from __future__ import annotations

from parsl.serialize import errors as parsl_errors

from .. import errors
from ..errors import *  # noqa: F403  (re-exported: the module extends byref.errors)

_TROUBLESHOOTING = "https://parsl.readthedocs.io/en/latest/faq.html#addressing-serializationerror"


class SerializationError(errors.SerializationError, parsl_errors.SerializationError):
    """A task argument that cannot be pickled, and where in the arguments it sits."""

    def __init__(self, message: str) -> None:
        errors.SerializationError.__init__(self, message)
        # Parsl's attributes: the function is not known where arguments are pickled.
        self.fname = "<unknown: see the message>"
        self.troubleshooting = _TROUBLESHOOTING


class WorkerImportError(errors.WorkerImportError, parsl_errors.DeserializationError):
    """A task's function or argument refers to a module this process cannot import."""

    def __init__(self, message: str) -> None:
        errors.WorkerImportError.__init__(self, message)
        self.reason = message  # Parsl's attribute


class RemoteOnlyError(errors.WorkerImportError, parsl_errors.DeserializationError):
    """A task's result or exception is of a class only the workers can import: the future
    fails with this (``byref.parsl.remote_only``), naming the module, the remote class, its
    message and the worker's traceback (as text)."""

    def __init__(
        self,
        message: str,
        *,
        module: str = "",
        remote_type: str = "",
        remote_message: str = "",
        remote_traceback: str = "",
    ) -> None:
        errors.WorkerImportError.__init__(self, message)
        self.reason = message  # Parsl's attribute
        self.module = module
        self.remote_type = remote_type
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback


__all__ = sorted({*errors.__all__, "RemoteOnlyError"})
