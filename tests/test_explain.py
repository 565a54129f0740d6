"""``byref.explain``: each kind of trouble users meet when pickling tasks, found before
submission, with its path and a fix; and ``byref explain`` on a pickled file."""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import byref


@pytest.fixture
def local_module(tmp_path: Path) -> Iterator[ModuleType]:
    """A module that is a local file, not an installed package."""
    (tmp_path / "my_analysis.py").write_text(
        "class Model:\n    pass\n\n"
        "class AnalysisFailed(Exception):\n    pass\n\n"
        "def simulate(x):\n    return x\n"
    )
    sys.path.insert(0, str(tmp_path))
    import my_analysis

    yield my_analysis
    sys.path.remove(str(tmp_path))
    del sys.modules["my_analysis"]


def test_large_buffers_are_what_byref_would_proxy() -> None:
    value = [np.zeros(1 << 18), {"small": np.zeros(10), "big": b"x" * (2 << 20)}]
    report = byref.explain(value)
    assert [(p.path, p.type, p.nbytes) for p in report.proxied] == [
        ("value[0]", "ndarray", 2 << 20),
        ("value[1]['big']", "bytes", 2 << 20),
    ]
    assert report.inline_bytes is not None and report.inline_bytes > 4 << 20
    assert report.proxied_bytes is not None and report.proxied_bytes < 2000
    assert report.ok
    assert "byref would proxy 2" in str(report)
    assert byref.explain(value, threshold=8 << 20).proxied == []


def test_an_object_met_twice_is_proxied_once() -> None:
    a = np.zeros(1 << 18)
    report = byref.explain([a, {"again": a}, (a,)])
    assert [p.path for p in report.proxied] == ["value[0]"]


def test_unpicklable_parts_are_named_by_path_and_pickler(tmp_path: Path) -> None:
    class Holder:
        def __init__(self) -> None:
            self.db = threading.Lock()

    report = byref.explain_task(len, 1, {"model": Holder()}, flag=True)
    paths = {(u.pickler, u.path) for u in report.unpicklable}
    assert ("cloudpickle", "args[1]['model'].db") in paths
    assert any("lock" in u.error for u in report.unpicklable)
    assert not report.ok
    assert "args[1]['model'].db" in str(report)


def test_what_dill_pickles_and_cloudpickle_does_not(tmp_path: Path) -> None:
    with (tmp_path / "f.txt").open("w") as handle:
        report = byref.explain({"log": handle})
    failing = {u.pickler for u in report.unpicklable}
    assert {"pickle", "cloudpickle"} <= failing
    assert "dill" not in failing
    assert all(u.path == "value['log']" for u in report.unpicklable)


def test_functions_and_classes_from_a_local_file(local_module: ModuleType) -> None:
    report = byref.explain_task(local_module.simulate, local_module.Model(), n=3)
    found = {(r.path, r.name) for r in report.by_reference}
    assert ("fn", "simulate") in found
    assert ("args[0]", "Model") in found
    entry = next(r for r in report.by_reference if r.name == "Model")
    assert "local file" in entry.why and "PYTHONPATH" in entry.fix
    assert "register_pickle_by_value(my_analysis)" in entry.fix
    assert not report.ok


def test_exception_types_defined_only_locally(local_module: ModuleType) -> None:
    report = byref.explain({"on_error": local_module.AnalysisFailed, "ok": ValueError})
    (entry,) = report.by_reference
    assert entry.exception and entry.name == "AnalysisFailed"
    assert "cannot be unpickled" in entry.why
    assert "exception type" in str(report)


def test_main_and_installed_modules() -> None:
    def main_function() -> None: ...

    main_function.__module__ = "__main__"
    report = byref.explain([main_function, np.float64(1.0), pickle.dumps, Path("x")])
    (entry,) = report.by_reference
    assert entry.module == "__main__" and "by value" in entry.fix


def test_proxies_are_not_walked_into(file_store: byref.Store) -> None:
    proxy = pickle.loads(pickle.dumps(file_store.proxy(np.zeros(1 << 18), hold=False)))
    report = byref.explain([proxy])
    assert report.proxied == [] and report.ok and not byref.is_resolved(proxy)


def test_cli_explains_a_pickled_file(tmp_path: Path) -> None:
    path = tmp_path / "task.pkl"
    path.write_bytes(pickle.dumps({"data": np.zeros(1 << 18), "n": 3}))
    out = subprocess.run(
        [sys.executable, "-m", "byref", "explain", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert "value['data']: ndarray, 2.1 MB" in out.stdout
    # A pickle naming a module this interpreter lacks: said so, with the module's name.
    path.write_bytes(b"cno_such_module\nThing\n.")
    out = subprocess.run(
        [sys.executable, "-m", "byref", "explain", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 1
    assert "no_such_module" in out.stderr
