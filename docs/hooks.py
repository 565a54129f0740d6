"""mkdocs hook: the benchmark plots live in benches/ (written there by the benchmarks); the
site takes them from there, so there is one copy of each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mkdocs.structure.files import File, Files

BENCHES = Path(__file__).resolve().parent.parent / "benches"


def on_files(files: Files, config: Any) -> Files:
    for plot in sorted(BENCHES.glob("*.png")):
        files.append(File(plot.name, str(BENCHES), config["site_dir"], config["use_directory_urls"]))
    return files
