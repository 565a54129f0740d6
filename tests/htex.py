"""A real local HighThroughputExecutor for the Parsl tests: 2 workers on 127.0.0.1."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import parsl
import pytest
from parsl.config import Config
from parsl.dataflow.dflow import DataFlowKernelLoader
from parsl.executors import HighThroughputExecutor
from parsl.providers import LocalProvider

ROOT = str(Path(__file__).resolve().parents[1])


def local_config(
    run_dir: Path | str, executors: list[HighThroughputExecutor] | None = None, **config: Any
) -> Config:
    """A HighThroughputExecutor with 2 workers on 127.0.0.1 (or `executors`), its files under
    `run_dir`."""
    if executors is None:
        executors = [
            HighThroughputExecutor(
                label="htex",
                address="127.0.0.1",
                loopback_address="127.0.0.1",
                max_workers_per_node=2,
                provider=LocalProvider(init_blocks=1, max_blocks=1),
            )
        ]
    return Config(executors=executors, run_dir=str(run_dir), **config)


@contextmanager
def loaded(run_dir: Path, **config: Any) -> Iterator[Any]:
    """Parsl, loaded with a local HTEX of its own (or `executors=`) until the block ends. A
    DFK loaded before (the `htex` fixture's, which the tests of a worker process share) is set
    aside meanwhile and is the loaded one again after.

    The tests' apps are pickled by reference (module `tests....`): the workers, which inherit
    this environment, must import them, as a user's workers their package.
    """
    # Parsl has no public way to load a DFK it already made: its loader's attribute it is.
    aside = DataFlowKernelLoader._dfk
    parsl.clear()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("PYTHONPATH", os.pathsep.join(p for p in (ROOT, os.getenv("PYTHONPATH")) if p))
        dfk = parsl.load(local_config(run_dir, **config))
        try:
            yield dfk
        finally:
            dfk.cleanup()
            parsl.clear()
            DataFlowKernelLoader._dfk = aside
