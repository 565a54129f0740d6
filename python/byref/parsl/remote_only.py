"""Results and exceptions of classes only the workers can import: a failed future, never a hang.

HTEX decodes every task's result and exception on one thread of the submitting process. A
payload naming a module that process lacks (a result of a class from a worker-only package, an
exception raised by one) raised out of that thread: the task's future never completed, and
neither did any later one on that executor. :func:`guard` wraps the executor's decoder: such a
payload becomes a failed future whose :class:`RemoteOnlyError` names the module, the remote
class, its message and the worker's traceback (as text), and the executor goes on working.
"""

from __future__ import annotations

import io
import pickle
import threading
import traceback
from typing import Any

from parsl.app.errors import RemoteExceptionWrapper

from .errors import RemoteOnlyError

_lock = threading.Lock()


class _StandIn:
    """An instance of a class that does not import here: what it was built from, kept."""

    _byref_class = "?"

    def __new__(cls, *args: Any, **kwargs: Any) -> _StandIn:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.__dict__["_byref_args"] = args

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_byref_state"] = state


class _Tolerant(pickle.Unpickler):
    """Loads a pickle (or dill) stream whatever classes it names: those that do not import
    here load as stand-ins, and their names are kept in ``missing``."""

    def __init__(self, body: bytes) -> None:
        super().__init__(io.BytesIO(body))
        self.missing: list[tuple[str, str]] = []

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError):
            self.missing.append((module, name))
            return type(name, (_StandIn,), {"_byref_class": f"{module}.{name}"})


def _message(value: Any) -> str:
    args = getattr(value, "_byref_args", None)
    if args is None and isinstance(value, BaseException):
        args = value.args
    if not args:
        return ""
    return str(args[0]) if len(args) == 1 else str(args)


def _remote_traceback(wrapper: Any) -> str:
    tb = getattr(wrapper, "e_traceback", None)
    try:
        return "".join(traceback.format_tb(tb.as_traceback())) if tb is not None else ""
    except Exception:
        return ""


def explain_failure(payload: bytes, error: BaseException) -> RemoteOnlyError:
    """The typed error for a result or exception ``payload`` that failed to decode here."""
    body = payload.split(b"\n", 1)[-1]
    module = getattr(error, "name", None) or ""
    try:
        loader = _Tolerant(body)
        value = loader.load()
    except Exception:
        loader, value = None, None
    if loader is not None and loader.missing:
        module = loader.missing[0][0]
    if isinstance(value, RemoteExceptionWrapper):
        remote = value.e_value
        kind = getattr(remote, "_byref_class", type(remote).__qualname__)
        message = _message(remote)
        remote_tb = _remote_traceback(value)
        what = f"the task raised {kind}({message!r})"
    else:
        kind = getattr(value, "_byref_class", type(value).__qualname__ if loader else "?")
        message, remote_tb = "", ""
        what = f"the task returned a {kind}"
    cannot = f"module {module!r}" if module else "its classes"
    text = (
        f"{what}, which this process cannot load: it cannot import {cannot} "
        f"(only the workers can?): {error}"
    )
    if remote_tb:
        text += f"\nThe worker's traceback:\n{remote_tb}"
    return RemoteOnlyError(
        text, module=module, remote_type=kind, remote_message=message, remote_traceback=remote_tb
    )


def guard() -> None:
    """Wraps HTEX's decoder of results and exceptions (once, for every executor): a payload
    that fails to decode fails its task's future with a :class:`RemoteOnlyError` instead of
    killing the executor's result thread."""
    from parsl.executors.high_throughput import executor as htex

    with _lock:
        if getattr(htex.deserialize, "_byref_guard", False):
            return
        decode = htex.deserialize

        def deserialize(payload: bytes) -> Any:
            try:
                return decode(payload)
            except Exception as e:
                # Parsl's DFK re-raises a wrapper it gets as a result: the task fails.
                error = explain_failure(payload, e)
                return RemoteExceptionWrapper(RemoteOnlyError, error, None)

        deserialize._byref_guard = True  # type: ignore[attr-defined]
        htex.deserialize = deserialize
