"""`.ci/module_cycles.py` (in `make lint` and `make test`) finds Rust modules that use each
other, and lets a child use its parent."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "module_cycles.py"


def crate(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "crates" / "demo" / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "crates"


def check(crates: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(crates)], capture_output=True, text=True
    )


def test_two_modules_that_use_each_other_fail(tmp_path: Path) -> None:
    crates = crate(
        tmp_path,
        {
            "lib.rs": "mod a;\nmod b;\nmod c;\n",
            "a.rs": "use crate::b::B;\npub struct A;\n",
            "b.rs": "pub struct B;\nfn f() { crate::c::g(); }\n",
            "c.rs": "pub fn g() { let _ = crate::a::A; }\n",
        },
    )
    done = check(crates)
    assert done.returncode == 1
    assert "a -> b -> c -> a" in done.stdout


def test_a_child_may_use_its_parent(tmp_path: Path) -> None:
    crates = crate(
        tmp_path,
        {
            "lib.rs": "mod client;\n",
            "client/mod.rs": "mod exchange;\nuse exchange::Live;\npub struct Store;\n",
            "client/exchange.rs": "use super::Store;\npub(super) struct Live;\n",
        },
    )
    assert check(crates).returncode == 0


def test_the_workspace_has_no_circle() -> None:
    done = check(SCRIPT.parents[1] / "crates")
    assert done.returncode == 0, done.stdout
