"""Which arguments travel by reference under Parsl: :mod:`byref.arguments` re-exported, and a
policy that leaves alone what Parsl must see as it is (futures and files, which it tracks as
dependencies)."""

from __future__ import annotations

from concurrent.futures import Future

from parsl.data_provider.files import File

from ..arguments import DEFAULT_THRESHOLD, Policy

#: Never proxied: Parsl must see them to track a task's dependencies.
DEPENDENCIES = (Future, File)


def parsl_policy(threshold: int = DEFAULT_THRESHOLD, types: tuple[type, ...] = ()) -> Policy:
    """A :class:`byref.arguments.Policy` that leaves Parsl's dependencies alone."""
    return Policy(threshold, tuple(types), keep=DEPENDENCIES)


__all__ = ["DEFAULT_THRESHOLD", "DEPENDENCIES", "Policy", "parsl_policy"]
