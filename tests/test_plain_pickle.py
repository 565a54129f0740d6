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
