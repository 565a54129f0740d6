"""The native writer of flat and plain values' pickles (`crates/byref-py/src/plain/writer.rs`)
against the C pickler: the same bytes for every value, so the same keys."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

import byref
from byref import _native

EDGE_INTS = [
    0, 1, 255, 256, 65535, 65536, -1, -128, -129, -256, -257, -65536, -65537,
    2**31 - 1, 2**31, -(2**31), -(2**31) - 1, 2**32, 2**40, -(2**40),
    2**63 - 1, 2**63, -(2**63), -(2**63) - 1, 2**64, 2**100, -(2**100), 10**400,
]  # fmt: skip
EDGE_FLOATS = [0.0, -0.0, 1.5, -2.25, 1e308, 5e-324, float("inf"), float("-inf"), float("nan")]
EDGE_STRINGS = [
    "", "a", "é", "snow ☃", "𝄞", "x" * 255, "x" * 256, "é" * 128, "\ud800", "a\udfffb",
    "y" * 65_600,
]  # fmt: skip


def same_as_pickler(value: Any) -> None:
    assert _native.plain_pickle(value) == pickle.dumps(value, protocol=5), repr(value)[:200]


@pytest.mark.parametrize(
    "value",
    [None, True, False, *EDGE_INTS, *EDGE_FLOATS, *EDGE_STRINGS],
    ids=lambda v: repr(v)[:30],
)
def test_each_scalar_is_pickled_as_the_c_pickler_does(value: Any) -> None:
    same_as_pickler(value)
    for container in (list, tuple, set, frozenset):
        same_as_pickler(container([value]))
    same_as_pickler({value: value} if not isinstance(value, float) else {"k": value})


@pytest.mark.parametrize("length", [0, 1, 2, 3, 4, 63, 64])
def test_containers_of_each_length_are_pickled_as_the_c_pickler_does(length: int) -> None:
    items = [f"item {i}" for i in range(length)]
    for value in (items, tuple(items), set(items), frozenset(items), dict.fromkeys(items, 7)):
        same_as_pickler(value)


def test_one_string_object_twice_is_a_memo_reference_as_in_the_c_pickler() -> None:
    word = "".join(["sha", "red"])  # one object, not interned
    twin = "".join(["sha", "red"])  # equal, another object: written again
    for value in ([word, word, twin], (word, twin, word, word), {word: word, "x": twin}):
        same_as_pickler(value)
    assert _native.plain_pickle([word, word]) != _native.plain_pickle([word, twin])


@pytest.mark.parametrize("total", [65_400, 65_520, 65_525, 65_530, 65_536, 65_600, 200_000])
def test_values_near_the_frame_size_are_pickled_as_the_c_pickler_does(total: int) -> None:
    # The pickler opens a second frame at 64 KiB; values that would are left to it.
    for parts in (1, 2, 63):
        strings = ["z" * (total // parts) for _ in range(parts)]
        same_as_pickler(strings)
        same_as_pickler([*strings, 7])  # the int starts a second frame


def test_values_that_are_not_flat_and_plain_are_not_pickled_here() -> None:
    for value in (
        [[1]],
        {"a": [1]},
        list(range(65)),
        [b"bytes may go out of band"],
        [2**100, object()],  # a case left to the pickler first, then one not plain
        ["\ud800", lambda: 1],
        ["y" * 70_000, {1}],
        (1, 2, 3, (4,)),
        {1.5j},
        type("Sub", (str,), {})("subclass"),
    ):
        assert _native.plain_pickle(value) is None, repr(value)[:80]


def scalar(rng: random.Random) -> Any:
    kind = rng.randrange(7)
    if kind == 0:
        return rng.choice([None, True, False])
    if kind == 1:
        return rng.randint(-(2 ** rng.randrange(70)), 2 ** rng.randrange(70))
    if kind == 2:
        return rng.choice([rng.uniform(-1e9, 1e9), rng.choice(EDGE_FLOATS)])
    if kind == 3:
        return "".join(chr(rng.choice([rng.randrange(32, 127), rng.randrange(0x10FFFF)]))
                       for _ in range(rng.randrange(12)))  # fmt: skip
    if kind == 4:
        return rng.choice(EDGE_INTS)
    return rng.choice(["task", "name", "small", "é", ""])  # shared objects: memo references


def flat_value(rng: random.Random) -> Any:
    items = [scalar(rng) for _ in range(rng.choice([0, 1, 2, 3, 5, 17, 64]))]
    hashable = [i for i in items if not isinstance(i, float)]  # nan keys compare unequal
    return rng.choice(
        [
            items[0] if items else None,
            items,
            tuple(items),
            set(hashable),
            frozenset(hashable),
            dict(zip(hashable, items, strict=False)),
        ]
    )


def test_random_flat_values_are_pickled_as_the_c_pickler_does() -> None:
    rng = random.Random(20261203)
    for _ in range(5_000):
        same_as_pickler(flat_value(rng))


def test_a_plain_value_is_stored_under_the_key_of_its_c_pickle() -> None:
    store = byref.Store("memory://plain-pickle-keys")
    for value in ({"task": 1, "name": "small"}, [1.5, "é", None], 2**70, "\ud800"):
        assert store.put(value) == _native.key_of(1, pickle.dumps(value, protocol=5), [])


# Reading back: a proxy's flat and plain value is read natively (`plain/reader.rs`) when its
# stream is made of the writer's opcodes, and by `pickle.loads` otherwise.

_reading = byref.Store("memory://plain-pickle-reads")


def resolved(stream: bytes) -> Any:
    """The target of a proxy of an object whose pickle stream is ``stream``."""
    handle = _reading.native.put(1, stream, []).encode()
    return _native.target_of(byref.Proxy(handle))


def same_as_unpickler(stream: bytes) -> None:
    try:
        expected = pickle.loads(stream)
    except Exception:
        with pytest.raises(Exception):  # noqa: B017 - whichever pickle raised, named by byref
            resolved(stream)
        return
    got = resolved(stream)
    # Pickled again by the C pickler: the same types, values, order and shared objects.
    assert pickle.dumps(got, protocol=5) == pickle.dumps(expected, protocol=5), stream


def test_flat_values_read_back_as_the_unpickler_reads_them() -> None:
    rng = random.Random(3)
    for _ in range(2_000):
        value = flat_value(rng)
        for stream in (pickle.dumps(value, protocol=5), _native.plain_pickle(value)):
            same_as_unpickler(stream)


@pytest.mark.parametrize(
    "stream",
    [
        b"\x80\x05]\x94(]\x94K\x01a}\x94e.",  # nested containers
        b"\x80\x05]\x94h\x00a.",  # a list that holds itself
        b"\x80\x05}\x94(K\x01K\x02s.",  # SETITEM may not reach below its mark
        b"\x80\x05(K\x01K\x02\x86.",  # nor TUPLE2
        b"\x80\x05]\x94(K\x01aK\x02e.",  # nor APPEND, the mark closed after
        b"\x80\x05}\x94(K\x01K\x02sK\x03K\x04u.",  # nor SETITEM, the mark closed after
        b"\x80\x05}\x94(K\x01u.",  # an odd number of items for SETITEMS
        b"\x80\x05}\x94((K\x01K\x02uu.",  # SETITEMS may not reach below an outer mark
        b"\x80\x05]\x94(K\x01\x94h\x01h\x01e.",  # one object memoized, referred to twice
        b"\x80\x05}\x94(]\x94K\x01u.",  # a list as a key: unhashable
        b"\x80\x05K\x01K\x02.",  # two values left
        b"\x80\x05K\x01.trailing",  # bytes after STOP
        b"\x80\x05h\x00.",  # a memo reference to nothing
        b"\x80\x05\x95\x03\x00\x00\x00\x00\x00\x00\x00K\x01.",  # a frame shorter than the rest
        b"\x80\x05\x95\x09\x00\x00\x00\x00\x00\x00\x00K\x01.",  # longer
        b"\x80\x05\x8c\x02\xed\xa0.",  # an encoded lone surrogate, cut short
        b"\x80\x05X\x03\x00\x00\x00\xed\xa0\x80\x94.",  # an encoded lone surrogate
        b"\x80\x05\x8a\x09\x00\x00\x00\x00\x00\x00\x00\x00\x01.",  # 2**64, in nine bytes
        b"\x80\x05\x8a\x00.",  # zero, in no bytes
        b"\x80\x05\x8a\x02\xff\x7f.",  # 32767
        b"\x80\x05\x8f\x94(K\x01K\x01\x90.",  # a set given one item twice
        b"\x80\x05(\x91\x94.",  # an empty frozenset
        b"\x80\x04K\x01.",  # protocol 4
        b"\x80\x05X\xff\xff\xff\xffab.",  # a string longer than the stream
    ],
)
def test_unusual_streams_read_back_as_the_unpickler_reads_them(stream: bytes) -> None:
    same_as_unpickler(stream)


def test_damaged_streams_read_back_as_the_unpickler_reads_them() -> None:
    rng = random.Random(4)
    for _ in range(3_000):
        stream = bytearray(_native.plain_pickle(flat_value(rng)))
        for _ in range(rng.randrange(1, 4)):
            if not stream:
                break
            at = rng.randrange(len(stream))
            change = rng.randrange(3)
            if change == 0:
                stream[at] = rng.randrange(256)
            elif change == 1:
                del stream[at:]
            else:
                stream.insert(at, rng.choice(b"()hKMN\x94\x85\x86\x87tsuae\x90\x91\x8f}]."))
        if stream:
            same_as_unpickler(bytes(stream))
