"""Fails if, inside a Rust crate of the workspace, two modules (files) use each other, directly
or around a circle. `make lint` runs it (Python's modules: import-linter, pyproject.toml).

A module's uses are the `crate::a::b` and `super::...` paths in its file, each resolved to the
longest module it names. A module may use its ancestors (a child sees its parent's private
items by design, as `server/cmd/get.rs` uses `cmd`'s `Command`): only the other edges count.
Usage: python .ci/module_cycles.py [crates-dir]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

PATH = re.compile(r"\b(crate|super)((?:::\w+)+)")


def modules(src: Path) -> dict[tuple[str, ...], Path]:
    """Each module of a crate by its path (`()` for the crate root)."""
    found = {}
    for file in src.rglob("*.rs"):
        parts = file.relative_to(src).with_suffix("").parts
        if parts[-1] in ("lib", "main", "mod"):
            parts = parts[:-1]
        found[parts] = file
    return found


def uses(module: tuple[str, ...], text: str, known: set[tuple[str, ...]]) -> set[tuple[str, ...]]:
    """The modules `module`'s text names, other than itself and its ancestors."""
    named = set()
    for start, rest in PATH.findall(text):
        base = () if start == "crate" else module[:-1]
        path = base + tuple(p for p in rest.split("::") if p)
        while path and path not in known:
            path = path[:-1]
        if path and path != module and module[: len(path)] != path:
            named.add(path)
    return named


def cycle(graph: dict[tuple[str, ...], set[tuple[str, ...]]]) -> list[tuple[str, ...]] | None:
    """One circle in `graph`, if it has any."""
    state: dict[tuple[str, ...], int] = {}  # 1: on the current path, 2: done
    path: list[tuple[str, ...]] = []

    def visit(node: tuple[str, ...]) -> list[tuple[str, ...]] | None:
        state[node], _ = 1, path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        state[node], _ = 2, path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def main() -> int:
    crates = Path(sys.argv[1] if len(sys.argv) > 1 else "crates")
    failed = False
    for src in sorted(crates.glob("*/src")):
        known = modules(src)
        graph = {m: uses(m, f.read_text(), set(known)) for m, f in known.items()}
        if circle := cycle(graph):
            failed = True
            shown = " -> ".join("::".join(m) or "crate" for m in circle)
            print(f"{src.parent.name}: modules use each other: {shown}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
