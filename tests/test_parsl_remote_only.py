"""Classes only the workers can import (issue 28): a task that raises such an exception, or
returns such an object, fails its future with a typed error naming the module and carrying
the worker's traceback; the executor goes on working. A real HTEX whose workers, not this
process, can import ``remote_only_mod``."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

import byref

parsl = pytest.importorskip("parsl")

from parsl.serialize import errors as parsl_errors  # noqa: E402

import byref.parsl  # noqa: E402

from .htex import loaded  # noqa: E402

REMOTE_ONLY = """
class Trouble(Exception):
    pass

class Thing:
    def __init__(self, v):
        self.v = v

def fail(why):
    raise Trouble(why)
"""


@parsl.python_app
def raise_remote_only(why):
    import remote_only_mod

    remote_only_mod.fail(why)


@parsl.python_app
def return_remote_only(v):
    import remote_only_mod

    return remote_only_mod.Thing(v)


@parsl.python_app
def total(x):
    return float(x.sum())


@pytest.mark.parametrize("mode", ["plugin", "decorator"])
def test_remote_only_classes_fail_the_future_and_the_executor_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    workers_only = tmp_path / "workers_only"
    workers_only.mkdir()
    (workers_only / "remote_only_mod.py").write_text(REMOTE_ONLY)
    # In the workers' environment only: this process's sys.path is already set.
    monkeypatch.setenv("PYTHONPATH", str(workers_only))
    with pytest.raises(ImportError):
        import remote_only_mod  # noqa: F401
    store = byref.Store((tmp_path / "store").as_uri())
    with loaded(tmp_path / "parsl"):
        if mode == "plugin":
            byref.parsl.install(store)
            apps = (raise_remote_only, return_remote_only, total)
        else:
            wrap = byref.parsl.proxy_args(store)
            apps = tuple(wrap(a) for a in (raise_remote_only, return_remote_only, total))
        raising, returning, summing = apps
        try:
            with pytest.raises(byref.parsl.errors.RemoteOnlyError) as raised:
                raising("only the workers know me").result(timeout=60)
            err = raised.value
            assert isinstance(err, byref.ByrefError)
            assert isinstance(err, parsl_errors.DeserializationError)
            assert err.module == "remote_only_mod"
            assert err.remote_type == "remote_only_mod.Trouble"
            assert err.remote_message == "only the workers know me"
            assert "in fail" in err.remote_traceback and "raise Trouble(why)" in str(err)
            again = pickle.loads(pickle.dumps(err))
            assert (type(again), str(again), again.remote_traceback) == (
                type(err),
                str(err),
                err.remote_traceback,
            )
            with pytest.raises(byref.parsl.errors.RemoteOnlyError) as returned:
                returning(3).result(timeout=60)
            assert returned.value.remote_type == "remote_only_mod.Thing"
            assert "remote_only_mod" in str(returned.value)
            # The executor's result thread lives on: later tasks complete.
            assert summing(np.ones(1 << 18)).result(timeout=60) == float(1 << 18)
        finally:
            if mode == "plugin":
                byref.parsl.uninstall()
