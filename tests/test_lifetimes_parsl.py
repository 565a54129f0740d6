"""A Parsl run leaves nothing behind (issue 17): what the decorator and the serializer plugin
store, and the workers' results, go at ``dfk.cleanup()``; a run killed with -9 leaves what
``byref gc --dead`` drops, to the last byte. Real HighThroughputExecutors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

import byref.parsl  # noqa: E402

from .htex import ROOT, loaded  # noqa: E402
from .strays import kill_marked  # noqa: E402

TREE_MARK = "BYREF_TEST_KILLED_RUN"


@parsl.python_app
def total(x):
    return float(np.asarray(x).sum())


@parsl.python_app
def doubled(x):
    return np.asarray(x) * 2


@parsl.python_app
def mutate_and_return(x):
    x += 1
    return x


@parsl.python_app
def never_looks(x):
    raise ValueError("failed before touching its argument")


def run_tasks(store: byref.Store) -> None:
    """A run of the `make demo` kind: decorated apps, results by reference, then the plugin."""
    add = byref.parsl.proxy_args(store)(total)
    twice = byref.parsl.proxy_args(store, results=True)(doubled)
    keep = byref.parsl.proxy_args(store, release_on_completion=False)(total)
    big = np.ones(1 << 18)  # 2 MiB
    assert add(big).result(timeout=120) == float(1 << 18)
    result = twice(big).result(timeout=120)
    assert byref.is_proxy(result) and not byref.is_resolved(result)
    # A result fed to the next task, unresolved here.
    assert add(twice(big * 3)).result(timeout=120) == float(6 << 18)
    assert keep(big * 4).result(timeout=120) == float(4 << 18)
    # A task that changes its argument and returns it: the worker stores the new value
    # again, for the run.
    changed = byref.parsl.proxy_args(store)(mutate_and_return)(big * 7).result(timeout=120)
    assert float(np.asarray(changed).sum()) == float(8 << 18)
    byref.parsl.install(store)
    try:
        assert total(big * 5).result(timeout=120) == float(5 << 18)
        with pytest.raises(ValueError, match="failed before"):
            never_looks(big * 6).result(timeout=120)
    finally:
        byref.parsl.uninstall()


def test_a_parsl_run_leaves_its_store_empty_after_cleanup(tmp_path: Path) -> None:
    store = byref.Store((tmp_path / "store").as_uri())
    with loaded(tmp_path / "parsl"):
        run_tasks(store)
        during = store.stats()
        # Held during the run: the results, the kept input, the changed value a task
        # returned, the plugin's unresolved input (equal to a result: one object).
        assert during["objects"] == 4 and during["records"] == 1, during
    assert store.ls() == []
    assert byref.Store(store.url).stats()["bytes"] == 0


KILLED_RUN = """
import sys
import parsl
import byref
from tests.htex import local_config
from tests.test_lifetimes_parsl import run_tasks
parsl.load(local_config(sys.argv[2]))
run_tasks(byref.Store(sys.argv[1]))
print("done", flush=True)
sys.stdin.read()
"""


def test_a_killed_parsl_run_leaves_only_what_gc_dead_drops(tmp_path: Path) -> None:
    store = byref.Store((tmp_path / "store").as_uri())
    # The run's process group dies with killpg; its worker pool, which Parsl starts in a
    # session of its own, is found by this mark and killed too.
    tree = uuid.uuid4().hex
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([ROOT, os.environ.get("PYTHONPATH", "")]),
        TREE_MARK: tree,
    }
    run = subprocess.Popen(
        [sys.executable, "-c", KILLED_RUN, store.url, str(tmp_path / "parsl")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
        start_new_session=True,
    )
    assert run.stdout is not None
    try:
        assert run.stdout.readline() == b"done\n", "the run failed"
    finally:
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()
        kill_marked(TREE_MARK, tree)
    left = store.stats()
    assert left["bytes"] > 0, "a killed run leaves what it held"
    report = store.gc(dead=True, dry_run=False)
    assert report["unknown"] == {}
    assert store.ls() == [], store.ls()
