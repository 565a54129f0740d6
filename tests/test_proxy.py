"""A proxy behaves as its target, and pickles as its handle."""

from __future__ import annotations

import gc
import os
import pickle
import shutil
import tempfile
import threading
import weakref
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import byref
from byref import _native
from byref.proxy import _p


@pytest.fixture
def long_store() -> Iterator[byref.Store]:
    """A file store whose path is 40 characters long, as on a cluster's scratch."""
    parent = tempfile.mkdtemp(prefix="br", dir="/tmp")
    path = Path(parent, "s".ljust(40 - len(parent) - 1, "x"))
    assert len(str(path)) == 40
    yield byref.Store(path.as_uri())
    shutil.rmtree(parent)


def unresolved(store: byref.Store, value: object, **kw: bool) -> byref.Proxy:
    """A proxy as a worker sees it: fresh from its pickle, not yet resolved."""
    proxy = pickle.loads(pickle.dumps(store.proxy(value, **kw)))
    assert not byref.is_resolved(proxy)
    return proxy


@pytest.mark.parametrize(
    "value",
    [{"a": 1}, [1, 2], np.ones(1_000_000), b"x" * 100_000, "text"],
    ids=["dict", "list", "ndarray", "bytes", "str"],
)
@pytest.mark.parametrize("evict", [False, True])
def test_a_pickled_proxy_is_under_100_bytes(
    long_store: byref.Store, value: object, evict: bool
) -> None:
    """Whatever the store's path (a file store travels as an 8-byte id) and with a reference
    to release (16 bytes more), for the classes proxies most often stand for."""
    wire = pickle.dumps(long_store.proxy(value, evict=evict))
    assert len(wire) <= 100, len(wire)
    back = pickle.loads(wire)
    assert np.array_equal(back, value) if isinstance(value, np.ndarray) else back == value


def test_behaves_as_its_target(store: byref.Store) -> None:
    p = unresolved(store, [3, 1, 2])
    assert len(p) == 3 and 1 in p and list(p) == [3, 1, 2] and p[0] == 3
    assert sorted(p) == [1, 2, 3] and p == [3, 1, 2] and p != [1] and p < [4]
    assert isinstance(p, list) and p.__class__ is list
    assert str(p) == "[3, 1, 2]" and repr(p) == "[3, 1, 2]"
    assert p + [4] == [3, 1, 2, 4] and [0] + p == [0, 3, 1, 2]  # noqa: RUF005 - the operators under test
    p.append(9)
    assert byref.extract(p) == [3, 1, 2, 9] and type(byref.extract(p)) is list


def test_numbers_strings_and_hashing(store: byref.Store) -> None:
    n = unresolved(store, 7)
    assert n + 1 == 8 and 1 + n == 8 and -n == -7 and n * 2 == 14 and 2**n == 128
    assert int(n) == 7 and float(n) == 7.0 and hash(n) == hash(7) and f"{n:03d}" == "007"
    assert [10, 11, 12, 13, 14, 15, 16, 17][n] == 17 and divmod(n, 2) == (3, 1)
    s = unresolved(store, "hello")
    assert s.upper() == "HELLO" and {s: 1}["hello"] == 1 and "ell" in s


def test_attributes_and_calls_reach_the_target(store: byref.Store) -> None:
    d = unresolved(store, {"a": 1})
    d["b"] = 2
    assert d.get("b") == 2 and set(d.keys()) == {"a", "b"}
    del d["a"]
    assert dict(d) == {"b": 2}
    f = unresolved(store, len)
    assert f([1, 2]) == 2


def test_names_the_target_lacks_raise_its_attribute_error(store: byref.Store) -> None:
    p = unresolved(store, {"a": 1})
    with pytest.raises(AttributeError, match="'dict' object has no attribute 'nope'"):
        p.nope  # noqa: B018
    assert not hasattr(p, "nope") and hasattr(p, "keys")
    # Asked again (the proxy class remembers which names are its own), the same answers.
    assert p.keys() == {"a": 1}.keys() and not hasattr(p, "nope")


def test_a_subclass_with_a_dict_finds_its_own_attributes_first(store: byref.Store) -> None:
    class Tagged(byref.Proxy):  # no __slots__: its instances have a __dict__
        pass

    p = Tagged(byref.handle_of(store.proxy({"a": 1})).encode())
    object.__setattr__(p, "keys", "its own")
    assert p.keys == "its own" and p.get("a") == 1 and p.__class__ is dict


def test_isinstance_answers_without_fetching(store: byref.Store) -> None:
    p = unresolved(store, np.arange(3))
    assert isinstance(p, np.ndarray) and not isinstance(p, dict) and p.__class__ is np.ndarray
    assert not byref.is_resolved(p)


def test_callable_exactly_when_the_target_is(store: byref.Store) -> None:
    # Parsl picks its serializer by callable(obj): an array's proxy must not look callable.
    assert callable(unresolved(store, len)) and callable(store.proxy(len))
    assert not callable(unresolved(store, [1])) and not callable(store.proxy([1]))
    assert byref.is_proxy(unresolved(store, len)) and not byref.is_proxy(len)


def test_a_proxy_of_a_path_string_opens_as_the_path(store: byref.Store, tmp_path: Path) -> None:
    path = tmp_path / "data.txt"
    path.write_text("hello")
    for value in (str(path), os.fsencode(path)):
        for p in (unresolved(store, value), store.proxy(value)):
            assert os.fspath(p) == value
            with open(p, "rb") as f:
                assert f.read() == b"hello"


def test_a_proxy_of_a_class_is_that_class_on_both_sides_of_issubclass(
    store: byref.Store,
) -> None:
    for make in (unresolved, lambda s, v: s.proxy(v)):
        p, q = make(store, int), make(store, int)
        assert issubclass(p, p) and issubclass(p, q) and issubclass(bool, p)
        assert not issubclass(str, q)


def test_numpy_interop(store: byref.Store) -> None:
    a = unresolved(store, np.arange(1_000, dtype=np.float64))
    assert isinstance(a, np.ndarray)
    assert np.asarray(a).shape == (1000,)
    assert a.sum() == 499_500 and np.sum(a) == 499_500
    assert np.add(a, 1)[0] == 1 and (a + 1)[1] == 2 and (np.ones(1000) + a)[2] == 3
    assert np.sqrt(a)[4] == 2 and a.dtype == np.float64 and a.shape == (1000,)
    assert np.array_equal(np.array(a, copy=True), np.arange(1000))


def test_memoryview_of_a_proxy_views_its_target(file_store: byref.Store) -> None:
    a = unresolved(file_store, np.arange(100_000, dtype=np.int64))
    view = memoryview(a)
    assert (view.itemsize, view.shape, view.readonly) == (8, (100_000,), False)
    assert view[99_999] == 99_999
    view.release()
    b = unresolved(file_store, b"abc" * 100)
    assert bytes(memoryview(b)[:3]) == b"abc"
    with pytest.raises(TypeError):
        memoryview(unresolved(file_store, [1, 2]))


def test_in_place_operators_act_as_on_the_value(store: byref.Store) -> None:
    n = unresolved(store, 5)
    alias = n
    n += 1
    # An immutable value: the name gets a new one, every other alias keeps the old.
    assert n == 6 and type(n) is int and alias == 5 and byref.is_proxy(alias)
    items = unresolved(store, [1])
    same = items
    items += [2]
    # A mutable one changes in place, under every alias.
    assert items is same and byref.extract(same) == [1, 2]


def test_in_place_on_a_mapped_array_stays_private(file_store: byref.Store) -> None:
    a = unresolved(file_store, np.zeros(100_000))
    a += 1
    assert np.asarray(a).sum() == 100_000
    assert file_store.get(byref.handle_of(a).key).sum() == 0


def test_resolve_is_resolved_extract(store: byref.Store) -> None:
    p = unresolved(store, {"k": "v"})
    byref.resolve(p)
    assert byref.is_resolved(p)
    assert byref.extract(p) == {"k": "v"} and type(byref.extract(p)) is dict
    assert byref.handle_of(p).url == store.url


def test_a_proxy_in_its_own_target_is_collected(store: byref.Store) -> None:
    """A proxy's state is native: the collector must still see through it, or a target that
    holds its own proxy (a list appended to while proxied) would never be freed."""
    target: list[object] = []
    p = store.proxy(target)
    target.append(p)
    seen = weakref.ref(p)
    del p, target
    gc.collect()
    assert seen() is None


def test_pickling_a_proxy_inside_its_own_target_fails_rather_than_hangs(
    store: byref.Store,
) -> None:
    """Its lock is reentrant: the inner pickle of the same proxy takes it again, and the
    recursion ends in an error (not a deadlock, nor a crash of the native frames between)."""
    target: list[object] = []
    p = store.proxy(target)
    target.append(p)
    with pytest.raises((RecursionError, byref.ByrefError)):
        pickle.dumps(p)


def test_a_proxy_of_none_holds_none(store: byref.Store) -> None:
    p = store.proxy(None)
    assert byref.is_resolved(p) and byref.extract(p) is None
    assert byref.extract(pickle.loads(pickle.dumps(p))) is None


def test_the_producer_keeps_its_value_without_a_fetch(store: byref.Store) -> None:
    value = {"x": 1}
    p = store.proxy(value)
    assert byref.is_resolved(p) and byref.extract(p) is value


def test_evict_deletes_after_first_resolve(store: byref.Store) -> None:
    p = store.proxy(np.arange(100), evict=True)
    key = byref.handle_of(p).key
    wire = pickle.dumps(p)
    first, second = pickle.loads(wire), pickle.loads(wire)
    assert first.sum() == 4950
    assert not store.exists(key)
    with pytest.raises(byref.ObjectNotFound, match="evict=True"):
        byref.resolve(second)


def test_evicting_one_sharer_keeps_the_others_object(store: byref.Store) -> None:
    data = np.arange(50_000)
    keeper = store.proxy(data)
    evicting = store.proxy(data.copy(), evict=True)
    assert byref.handle_of(keeper).key == byref.handle_of(evicting).key
    assert pickle.loads(pickle.dumps(evicting)).sum() == data.sum()
    assert store.exists(byref.handle_of(keeper).key), "shared object deleted by one evict"
    assert np.array_equal(pickle.loads(pickle.dumps(keeper)), data)
    assert store.evict(byref.handle_of(keeper).key) is True
    with pytest.raises(byref.ObjectNotFound):
        byref.resolve(pickle.loads(pickle.dumps(keeper)))


def _with_evict_flag(handle: bytes, reference: bytes) -> bytes:
    """`handle` as someone forging it would: the evict flag set, with a reference of their
    choosing (version and flags 1, key 32, then the length as a varint)."""
    end = 33
    while handle[end] & 0x80:
        end += 1
    end += 1
    return bytes([handle[0] | 1]) + handle[1:end] + reference + handle[end:]


def test_a_forged_evict_flag_releases_nothing(store: byref.Store) -> None:
    """A handle whose evict flag was set by someone other than its producer names a
    reference the object does not hold: resolving it gives the value and releases nothing,
    neither the producer's reference nor any other."""
    data = np.arange(50_000)
    keeper = store.proxy(data)
    handle = object.__getattribute__(keeper, "_byref_handle")
    key = byref.handle_of(keeper).key
    forged = _with_evict_flag(handle, os.urandom(16))
    assert _native.Handle.decode(forged).evict
    for _ in range(3):
        proxy = pickle.loads(pickle.dumps(_p(forged, "numpy.ndarray")))
        byref.resolve(proxy)
        assert np.array_equal(proxy, data)
    assert store.exists(key)
    assert store.evict(key) is True, "the producer's one reference was still there"
    assert not store.exists(key)


def test_threads_resolve_one_evict_proxy_exactly_once(store: byref.Store) -> None:
    p = unresolved(store, np.arange(1_000_000), evict=True)
    sums: list[float] = []
    threads = [threading.Thread(target=lambda: sums.append(float(p.sum()))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sums == [499999500000.0] * 8


def test_threads_resolve_many_proxies_concurrently(store: byref.Store) -> None:
    proxies = [unresolved(store, np.full(100_000, i)) for i in range(32)]
    results: dict[int, float] = {}

    def work(i: int) -> None:
        results[i] = float(proxies[i].sum())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: 100_000.0 * i for i in range(32)}
