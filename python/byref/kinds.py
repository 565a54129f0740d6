"""The class names pickled proxies carry, so that ``isinstance`` answers for an unresolved
proxy without fetching its target: a common class by a small code, any other by
``module:qualname``. The codebook is a wire format, beside handles and frames in Rust
(``crates/byref/src/kinds.rs``); pickling a proxy and rebuilding one use it there."""

from __future__ import annotations

import importlib
from typing import Any

from . import _native

#: ``module:qualname`` of a class when that finds it again, else None (native: a proxy made
#: with its target names the target's class there too).
class_name = _native.class_name


def find_class(name: str) -> type | None:
    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) else None
