"""byref's errors, as Parsl's own types too: code that catches Parsl's exceptions catches these.

Each is still a :class:`byref.ByrefError` (the first base, whose message is the one shown) and
pickles with standard types: a message string and two string attributes.
"""

from __future__ import annotations

from parsl.serialize import errors as parsl_errors

from .. import errors

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


__all__ = ["SerializationError", "WorkerImportError"]
