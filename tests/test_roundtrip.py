"""Values survive put/get and proxy/pickle/resolve unchanged, with buffers out of band."""

from __future__ import annotations

import pickle
from fractions import Fraction

import numpy as np
import pytest

import byref
from byref import _native, serialize

from .conftest import resolve_elsewhere

VALUES = [
    0,
    "text",
    None,
    [1, 2.5, "three"],
    {"nested": {"a": (1, 2)}, "set": {1, 2}},
    Fraction(1, 3),
    b"",
    b"x" * 10,
    b"y" * (serialize.OUT_OF_BAND_MIN + 1),
    bytearray(b"z" * (serialize.OUT_OF_BAND_MIN * 2)),
]


def same(a: object, b: object) -> bool:
    if isinstance(a, np.ndarray):
        return isinstance(b, np.ndarray) and a.dtype == b.dtype and np.array_equal(a, b)
    return type(a) is type(b) and a == b


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_put_get_round_trips(store: byref.Store, value: object) -> None:
    key = store.put(value)
    assert len(key) == 64
    assert same(store.get(key), value)


ARRAYS = [
    np.arange(10, dtype=np.int8),
    np.arange(100_000, dtype=np.float64).reshape(100, 1000),
    np.asfortranarray(np.arange(120_000, dtype=np.float32).reshape(300, 400)),
    np.arange(100_000)[::3],  # not contiguous: pickled in band
    np.array(3.5),
    np.zeros(0),
    np.array(["a", "bc"]),
    np.zeros(5, dtype=[("x", "i4"), ("y", "f8")]),
]


@pytest.mark.parametrize("array", ARRAYS, ids=lambda a: f"{a.dtype}{a.shape}")
def test_numpy_arrays_round_trip(store: byref.Store, array: np.ndarray) -> None:
    got = store.get(store.put(array))
    assert same(got, array)
    if array.flags.f_contiguous and not array.flags.c_contiguous:
        assert got.flags.f_contiguous, "Fortran order kept"


def test_equal_data_has_equal_keys(store: byref.Store) -> None:
    a = np.arange(1000)
    assert store.put(a) == store.put(a.copy())
    assert store.put(a) != store.put(a + 1)


def test_large_buffers_never_enter_the_pickle_stream() -> None:
    payload = {"b": b"q" * 500_000, "a": np.ones(200_000), "m": memoryview(b"r" * 300_000)}
    encoding, stream, buffers = serialize.dumps(payload)
    assert encoding == serialize.PICKLE5
    assert len(stream) < 1000
    assert sorted(len(memoryview(b)) for b in buffers) == [300_000, 500_000, 1_600_000]


class _TaggedDict(dict):  # type: ignore[type-arg]
    """A dict subclass: its class must travel with it, so byref's pickler sees it."""


@pytest.mark.parametrize(
    ("value", "plain"),
    [
        ({"task": 1, "name": "small", "ok": True, "x": 0.5, "none": None}, True),
        ([1, "a", 2.0], True),
        ((1, 2), True),
        ({1, 2}, True),
        (frozenset({"a"}), True),
        ("text", True),
        ({"blob": b"q" * 10}, False),  # bytes may leave the stream as a buffer
        ([[1]], False),  # nested: not flat
        (list(range(65)), False),  # longer than checking is worth
        (_TaggedDict(a=1), False),
        ({"a": np.float64(1.0)}, False),
    ],
)
def test_only_flat_plain_values_skip_byrefs_pickler(value: object, plain: bool) -> None:
    assert (_native.plain_pickle(value) is not None) is plain
    encoding, stream, buffers = serialize.dumps(value)
    assert serialize.loads(encoding, stream, buffers) == value
    if plain:
        assert (stream, buffers) == (pickle.dumps(value, protocol=5), [])


def test_the_same_buffer_twice_is_stored_once() -> None:
    blob = b"s" * 200_000
    _, _, buffers = serialize.dumps([blob, blob])
    assert len(buffers) == 1
    back = serialize.loads(*serialize.dumps([blob, blob]))
    assert back[0] is back[1] and back[0] == blob


def test_memoryview_comes_back_as_a_view_with_its_shape(store: byref.Store) -> None:
    view = memoryview(np.arange(60_000, dtype=np.int32).reshape(200, 300))
    got = store.get(store.put({"v": view}))["v"]
    assert isinstance(got, memoryview)
    assert (got.format, got.shape) == (view.format, view.shape)
    assert got.tobytes() == view.tobytes()


@pytest.mark.parametrize("hold", [True, False])
def test_every_memoryview_comes_back_as_one(store: byref.Store, hold: bool) -> None:
    # Small, non-contiguous, read-only: pickle cannot carry a memoryview, and cloudpickle
    # (where plain pickling fails) turned it into bytes.
    grid = memoryview(np.arange(12.0).reshape(3, 4))
    for view in (memoryview(b"xy"), memoryview(bytearray(b"abc" * 100))[::2], grid, grid[::2]):
        got = byref.extract(pickle.loads(pickle.dumps(store.proxy(view, hold=hold))))
        assert isinstance(got, memoryview) and got.nbytes == view.nbytes, type(got)
        assert (got.format, got.shape, got.tolist()) == (view.format, view.shape, view.tolist())


class LocalThing:
    """Stands in for a class defined in a user's __main__ script."""

    def __init__(self, v: int) -> None:
        self.v = v


LocalThing.__module__ = "__main__"


def test_lambdas_closures_and_main_classes_fall_back_to_cloudpickle(store: byref.Store) -> None:
    k = 5
    value = {"f": lambda x: x + k, "thing": LocalThing(3), "arr": np.ones(100_000)}
    encoding, _, buffers = serialize.dumps(value)
    assert encoding == serialize.CLOUDPICKLE
    assert len(buffers) == 1, "cloudpickle must keep buffers out of band too"
    got = store.get(store.put(value))
    assert got["f"](1) == 6 and got["thing"].v == 3 and got["arr"].sum() == 100_000


def test_unpicklable_values_raise_a_byref_error(store: byref.Store) -> None:
    import threading

    with pytest.raises(byref.SerializationError, match="lock"):
        store.put({"lock": threading.Lock()})


def test_arrays_from_file_store_are_private_writable_views(file_store: byref.Store) -> None:
    array = np.arange(1_000_000, dtype=np.float64)
    key = file_store.put(array)
    got = file_store.get(key)
    assert got.flags.writeable
    assert not got.flags.owndata, "a view of the mapping, not a copy"
    got[:10] = -1
    assert np.array_equal(file_store.get(key), array), "writes must stay private"


@pytest.mark.parametrize("n", [16, 100_000, 1 << 20])  # 128 B, 800 KB, 8 MiB
def test_every_resolved_array_is_writable_and_private(store: byref.Store, n: int) -> None:
    array = np.arange(n, dtype=np.float64)
    key = store.put(array)
    first = store.get(key)
    assert first.flags.writeable
    first[:] = -1
    first.sort()
    proxy = pickle.loads(pickle.dumps(store.proxy(array)))
    proxy += 1  # in place, through a proxy
    # Neither write reached the store, this process's cache, or the other resolve.
    assert np.array_equal(store.get(key), array)
    assert np.array_equal(np.asarray(proxy), array + 1) and np.all(first == -1)


def test_a_proxy_resolves_in_a_fresh_process(file_store: byref.Store) -> None:
    proxy = file_store.proxy({"arr": np.arange(1_000_000), "tag": "hello"})
    out = resolve_elsewhere(proxy, "(int(x['arr'].sum()), x['tag'], x.__class__.__name__)")
    assert out == str((499999500000, "hello", "dict"))


def test_pickled_proxy_is_only_the_handle(file_store: byref.Store) -> None:
    big = np.zeros(10_000_000, dtype=np.uint8)
    proxy = file_store.proxy(big)
    unresolved = pickle.loads(pickle.dumps(proxy))
    assert len(pickle.dumps(proxy)) < 128 + len(file_store.url)
    byref.resolve(unresolved)
    assert byref.is_resolved(unresolved)
    assert pickle.dumps(unresolved) == pickle.dumps(proxy), "a resolved proxy pickles the same"
