"""Runs wrapt's own ObjectProxy tests against byref.Proxy: a check of transparency.

    python tests/wrapt_check.py [WRAPT_VERSION]     (make wrapt-check)

Downloads wrapt's sdist from PyPI into a temporary directory, makes its proxy classes
(`BaseObjectProxy`, `ObjectProxy`, `CallableObjectProxy`, `AutoObjectProxy`) build byref proxies
holding their target, and runs the proxy test files with pytest. Not part of `make test`:
it needs PyPI, and failures of tests of wrapt's own API (`__wrapped__`, `_self_` attributes,
its class names) are expected. Prints pytest's summary; the closing note of issue 10 lists
what fails and why.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

FILES = [
    "test_object_proxy.py",
    "test_inplace_operators.py",
    "test_proxy_operands.py",
    "test_copy.py",
    "test_pickle.py",
]

PLUGIN = '''
import wrapt

import byref
from byref.forwarding import optional_methods_of
from byref.proxy import proxy_class


class ByrefProxy(byref.Proxy):
    """wrapt's proxy classes, as byref proxies holding their target."""

    __slots__ = ()

    def __new__(cls, wrapped, *args, **kwargs):
        methods = optional_methods_of(wrapped)
        if cls is ByrefProxy and methods:  # the optional methods byref gives this target
            bases = (ByrefProxy, proxy_class(methods))
            cls = _with_methods.setdefault(
                methods, type("ByrefProxy", bases, {"__slots__": ()})
            )
        return byref.Proxy.__new__(cls, b"", wrapped)

    def __init__(self, wrapped):
        pass  # made whole by __new__ (a byref proxy's state is its native base's)


_with_methods = {}


def pytest_configure(config):
    for name in ("BaseObjectProxy", "ObjectProxy", "CallableObjectProxy", "AutoObjectProxy"):
        setattr(wrapt, name, ByrefProxy)
'''


def main(version: str) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary",
             ":all:", "--dest", tmp, f"wrapt=={version}"],
            check=True,
        )  # fmt: skip
        with tarfile.open(next(root.glob("wrapt-*.tar.gz"))) as sdist:
            sdist.extractall(root, filter="data")
        source = next(p for p in root.iterdir() if p.is_dir())
        (root / "byref_wrapt_plugin.py").write_text(PLUGIN)
        env = {"PYTHONPATH": f"{root}:{source / 'src'}", "WRAPT_DISABLE_EXTENSIONS": "true"}
        tests = [str(source / "tests" / "core" / name) for name in FILES]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "byref_wrapt_plugin", "-p",
             "no:cacheprovider", "--rootdir", str(source), "-rf", *tests],
            env={**__import__("os").environ, **env},
            cwd=source,
        )  # fmt: skip
        return 0 if done.returncode in (0, 1) else done.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "2.5.2"))
