"""The class names pickled proxies carry (a wire format, like the frames of serialize): a
common class by a two-byte code, any other by ``module:qualname``, so that ``isinstance``
answers for an unresolved proxy without fetching its target."""

from __future__ import annotations

import importlib
from typing import Any

from . import _native

#: ``module:qualname`` of a class when that finds it again, else None (native: a proxy made
#: with its target names the target's class there too).
class_name = _native.class_name


# The classes proxies most often stand for: a pickled proxy carries the class's index here
# (two bytes) instead of its name. Append only: a code means the same class in every version.
_COMMON_KINDS = (
    "builtins:dict",
    "builtins:list",
    "builtins:tuple",
    "builtins:str",
    "builtins:bytes",
    "builtins:bytearray",
    "builtins:int",
    "builtins:float",
    "builtins:set",
    "builtins:frozenset",
    "builtins:bool",
    "builtins:complex",
    "numpy:ndarray",
    "pandas.core.frame:DataFrame",
    "pandas.core.series:Series",
    "torch:Tensor",
    "xarray.core.dataarray:DataArray",
    "xarray.core.dataset:Dataset",
    "pyarrow.lib:Table",
    "polars.dataframe.frame:DataFrame",
    "collections:OrderedDict",
    "collections:defaultdict",
    "collections:deque",
)
_KIND_CODES = {name: code for code, name in enumerate(_COMMON_KINDS)}


def kind_code(kind: str | None) -> int | str | None:
    """What a pickled proxy carries of its class name: a code for a common class."""
    return _KIND_CODES.get(kind, kind) if kind else None


def kind_name(kind: int | str | None) -> str | None:
    """The class name a pickled proxy's ``kind`` stands for (a code of a newer byref: none)."""
    if isinstance(kind, int):
        return _COMMON_KINDS[kind] if 0 <= kind < len(_COMMON_KINDS) else None
    return kind


def find_class(name: str) -> type | None:
    module, _, qualname = name.partition(":")
    try:
        found: Any = importlib.import_module(module)
        for part in qualname.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError):
        return None
    return found if isinstance(found, type) else None
