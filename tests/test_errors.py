"""Bad input gets a typed error, every error pickles, and nothing is lost."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest

import byref
from byref import _native

from .conftest import run_python

ALL_ERRORS = [getattr(byref.errors, name) for name in byref.errors.__all__]


@pytest.mark.parametrize("cls", ALL_ERRORS)
def test_errors_derive_from_byref_error_and_pickle(cls: type[Exception]) -> None:
    err = cls("object abc not found in file:///x")
    assert isinstance(err, byref.ByrefError)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is cls and str(back) == "object abc not found in file:///x"
    assert b"_native" not in pickle.dumps(err)


def test_object_not_found_is_a_key_error(store: byref.Store) -> None:
    with pytest.raises(KeyError):
        store.get("0" * 64)
    with pytest.raises(byref.ObjectNotFound, match=r"0{64}"):
        store.get("0" * 64)


def test_a_closed_store_says_so_on_every_use() -> None:
    store = byref.Store("memory://closed-store")
    key = store.put({"a": 1})
    store.close()
    for use in (
        lambda: store.proxy({"a": 1}),
        lambda: store.put({"a": 1}),
        lambda: store.get(key),
        lambda: store.put_many([1]),
    ):
        with pytest.raises(byref.ConfigError, match="this Store is closed"):
            use()
    assert repr(store) == "Store(<closed>)"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"BR\x01\x00" + bytes(40),  # an older byref's
        b"\x30" + bytes(40),  # a newer one's
        b"\x28" + bytes(40),  # unknown flags
        b"\x20" + bytes(20),  # cut short
        b"\x22" + bytes(41),  # a store id with no record
        b"garbage" * 20,
    ],
)
def test_malformed_handles_raise_handle_error(data: bytes) -> None:
    with pytest.raises(byref.HandleError):
        _native.resolve(data)
    proxy = byref._p(data)
    with pytest.raises(byref.HandleError):
        byref.resolve(proxy)


def test_truncated_pickled_proxy_handle(file_store: byref.Store) -> None:
    handle = byref.handle_of(file_store.proxy([1])).encode()
    for cut in range(len(handle)):
        with pytest.raises(byref.HandleError):
            _native.resolve(handle[:cut])


def test_keys_that_are_not_hex_are_handle_errors(store: byref.Store) -> None:
    with pytest.raises(byref.HandleError):
        store.get("not-a-key")


@pytest.mark.parametrize(
    "url",
    ["ftp://host/x", "file:///tmp/x?colour=red", "memory://?verify=maybe", "no scheme"],
)
def test_bad_urls_raise_config_error(url: str) -> None:
    with pytest.raises(byref.ConfigError):
        byref.Store(url)


def test_corrupted_object_raises_integrity_error(file_store: byref.Store, tmp_path: Path) -> None:
    key = file_store.put(np.arange(100_000))
    [path] = (tmp_path / "objects").glob(f"*/{key}.*")  # its one name: one reference
    data = bytearray(path.read_bytes())
    data[-1000] ^= 0xFF
    path.write_bytes(bytes(data))
    verified = byref.Store(file_store.url, verify=True)
    with pytest.raises(byref.IntegrityError, match=key):
        verified.get(key)
    assert file_store.get(key)[-125] != 99_875, "local stores trust their files by default"


def test_verify_option_travels_in_the_handle(tmp_path: Path) -> None:
    store = byref.Store(tmp_path.as_uri(), verify=True)
    assert store.url.endswith("?verify=true")
    assert byref.handle_of(store.proxy([1])).url == store.url


def test_full_disk_raises_store_full_and_leaves_nothing_behind(tmp_path: Path) -> None:
    # RLIMIT_FSIZE makes writes past 1 MiB fail as a full disk would, in a child process.
    code = f"""
import resource, signal, numpy as np, byref
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
store = byref.Store({tmp_path.as_uri()!r})
small = store.put(b"fits")
try:
    store.put(np.ones(1_000_000))
except byref.StoreFull as e:
    print("StoreFull", e)
print(store.get(small).decode())
"""
    out = run_python(code).decode()
    assert out.startswith("StoreFull") and out.strip().endswith("fits"), out
    assert list((tmp_path / "tmp").iterdir()) == [], "the partial write was not cleaned up"


def test_closed_store_raises(store: byref.Store) -> None:
    with store as s:
        key = s.put(1)
    with pytest.raises(byref.ConfigError, match="closed"):
        store.get(key)


@pytest.mark.parametrize(
    "url",
    [
        "redis://user:hunter2@h:1/0",
        "rediss://:hunter2@h/0",
        "redis+cluster://u:hunter2@a:1,b:2",
        "s3://AKIA:hunter2@bucket/p",
        "quic://u:hunter2@127.0.0.1:1?fingerprint=" + "0" * 64,
        "file://u:hunter2@localhost/tmp/x",
        "memory://u:hunter2@x",
        "peer://u:hunter2@127.0.0.1",
        "redis://u:hunter2@[bad",
    ],
)
def test_credentials_in_any_url_are_refused_and_never_echoed(url: str) -> None:
    with pytest.raises(byref.ConfigError) as caught:
        byref.Store(url)
    assert "hunter2" not in str(caught.value)


def test_a_handle_to_a_missing_file_store_makes_no_directory(tmp_path: Path) -> None:
    """A handle says where to read, nothing more: resolving one that names a directory this
    machine lacks fails clearly and creates nothing there."""
    root = tmp_path / "gone"
    proxy = byref.Store(root.as_uri()).proxy(np.arange(1000))
    data = pickle.dumps(proxy)
    shutil.rmtree(root)
    code = (
        "import pickle, sys, byref\n"
        "try:\n"
        "    byref.resolve(pickle.loads(sys.stdin.buffer.read()))\n"
        "except byref.ConfigError as e:\n"
        "    print('refused:', e)\n"
    )
    assert run_python(code, stdin=data).startswith(b"refused:")
    assert not root.exists()


def _persistent(pid: object) -> bytes:
    """A pickle stream of one persistent id `pid`."""
    import io

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj: object) -> object:
            return pid if obj is Ellipsis else None

    out = io.BytesIO()
    Pickler(out, protocol=5).dump(Ellipsis)
    return out.getvalue()


@pytest.mark.parametrize(
    "stream, buffers",
    [
        (pickle.dumps(list(range(100)), protocol=5)[:-7], []),  # truncated: EOFError before
        (b"\x80\x05this is no pickle", []),  # UnpicklingError before
        (_persistent(("bytes",)), []),  # a buffer it lacks: StopIteration before
        (_persistent(7), [b"x"]),  # an id that is not a tuple: TypeError before
    ],
    ids=["truncated", "garbage", "missing-buffer", "bad-persistent-id"],
)
def test_a_crafted_frame_raises_a_typed_error(
    store: byref.Store, stream: bytes, buffers: list[bytes]
) -> None:
    """Anyone can store bytes and name them in a handle: a stream that does not load is a
    `byref.DeserializationError`, never a raw `UnpicklingError`/`EOFError`/`StopIteration`."""
    handle = _native.Store(store.url).put(1, stream, buffers)
    with pytest.raises(byref.DeserializationError) as caught:
        store.get(handle.key)
    assert isinstance(caught.value, pickle.UnpicklingError)
    pickle.loads(pickle.dumps(caught.value))
