"""A proxy pickles and copies as its current value: what a task changes, travels.

Each test plays a task on a worker: the proxy arrives pickled (`arrive`), the task uses it,
and whatever it returns or passes on is pickled again (`send`).
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import byref
from byref import _native
from byref.pickling import INLINE_MAX

BIG = INLINE_MAX // 8 * 2  # float64 elements: twice the inline limit


def arrive(obj: object) -> object:
    """What a worker gets: `obj` pickled and unpickled (a proxy arrives unresolved)."""
    return pickle.loads(pickle.dumps(obj))


send = arrive  # and what the next process gets of what the task sends on


def handle(proxy: object) -> bytes:
    return byref.handle_of(proxy).encode()


@pytest.mark.parametrize("evict", [False, True])
def test_mutate_and_return_sends_the_new_value(store: byref.Store, evict: bool) -> None:
    arg = arrive(store.proxy(np.full(BIG, 0.5), evict=evict))
    arg += 1  # the task: `arr += 1; return arr`
    result = send(arg)
    assert byref.is_proxy(result), "a large value travels by reference"
    assert float(result[0]) == 1.5 and float(np.asarray(result).sum()) == 1.5 * BIG
    # Pickled once more (say, handed to a second task): still the new value, still resolvable.
    again = send(arg)
    assert float(again[0]) == 1.5 and float(np.asarray(again).max()) == 1.5


def test_small_values_travel_inline(store: byref.Store) -> None:
    arg = arrive(store.proxy([1, 2, 3]))
    arg.append(4)
    result = send(arg)
    assert type(result) is list and result == [1, 2, 3, 4]


@pytest.mark.parametrize("evict", [False, True])
def test_return_unchanged_after_use(store: byref.Store, evict: bool) -> None:
    arg = arrive(store.proxy(np.arange(BIG, dtype=np.float64), evict=evict))
    assert float(arg.sum()) == BIG * (BIG - 1) / 2  # resolved (and, with evict, released)
    result = send(arg)
    assert store.exists(byref.handle_of(result).key)
    assert np.array_equal(np.asarray(result), np.arange(BIG, dtype=np.float64))


def test_unchanged_value_is_stored_again_without_a_new_object(file_store: byref.Store) -> None:
    array = np.arange(BIG, dtype=np.float64)
    arg = arrive(file_store.proxy(array, evict=True))
    arg.sum()
    assert not file_store.exists(byref.key_of(array)), "released by its one resolve"
    result = send(arg)
    # Same content, same key: the value went back into the store under its old name.
    assert byref.handle_of(result).key == byref.key_of(array)
    assert np.array_equal(np.asarray(result), array)


def test_unresolved_proxy_passes_on_its_handle(store: byref.Store) -> None:
    arg = arrive(store.proxy(np.zeros(BIG)))
    passed = send(arg)  # a task that hands its argument on untouched: nothing fetched
    assert not byref.is_resolved(arg) and handle(passed) == handle(arg)
    assert float(np.asarray(passed).sum()) == 0.0


def test_producer_proxy_pickles_as_its_handle_until_changed(store: byref.Store) -> None:
    array = np.zeros(BIG)
    p = store.proxy(array)
    stored, key = handle(p), byref.handle_of(p).key
    assert handle(send(p)) == stored, "unchanged: the handle it was stored under"
    array[0] = 7  # changed through the original name, not the proxy
    fresh = send(p)
    assert handle(fresh) != stored and float(fresh[0]) == 7.0
    p[1] = 8  # and through the proxy
    assert float(send(p)[1]) == 8.0
    assert float(store.get(key)[0]) == 0.0, "the first stored value is untouched"


#: A small value, and a change made to it in place.
CHANGES: list[tuple[Callable[[], Any], Callable[[Any], object]]] = [
    (lambda: {"a": 1, "b": "x"}, lambda v: v.update(a=2)),  # a stream as long
    (lambda: {"a": 1}, lambda v: v.update(a="y" * 5000)),  # longer than a stream kept
    (lambda: [1, 2, 3], lambda v: v.append(4)),
    (lambda: [1, 2, 3], lambda v: v.append([4])),  # no longer flat and plain
    (lambda: {1, 2}, lambda v: v.discard(2)),
]


@pytest.mark.parametrize("evict", [False, True])
def test_a_small_value_changed_in_place_travels_changed(store: byref.Store, evict: bool) -> None:
    for make, change in CHANGES:
        value = make()
        p = store.proxy(value, evict=evict)
        stored = handle(p)
        change(value)  # through the original name: the proxy holds the same object
        sent = send(p)
        assert sent == value
        if byref.is_proxy(sent) and not byref.is_resolved(sent):
            assert handle(sent) != stored, "stored again: not the handle of the first value"
        assert store.get(_native.Handle.decode(stored).key) == make(), "the first value stays"


def test_a_small_value_changed_and_changed_back_travels_as_its_handle(
    store: byref.Store,
) -> None:
    value = {"a": 1}
    p = store.proxy(value)
    value["a"] = 2
    value["a"] = 1
    assert handle(send(p)) == handle(p)


def test_evict_proxy_made_here_can_be_sent_twice_once_resolved(store: byref.Store) -> None:
    p = store.proxy(np.ones(BIG), evict=True)
    first, second = send(p), send(p)  # the second pickle stores again: its own reference
    assert float(np.asarray(first).sum()) == BIG
    assert float(np.asarray(second).sum()) == BIG


def test_copies_are_of_the_current_value(store: byref.Store) -> None:
    p = arrive(store.proxy([1, 2, 3]))
    p.append(4)
    shallow, deep = copy.copy(p), copy.deepcopy(p)
    assert shallow == deep == [1, 2, 3, 4] and type(shallow) is list and type(deep) is list
    shallow.append(5)
    assert byref.extract(p) == [1, 2, 3, 4], "a copy, not the target itself"


@pytest.mark.parametrize("evict", [False, True])
def test_copy_inside_a_task(store: byref.Store, evict: bool) -> None:
    arg = arrive(store.proxy(np.arange(10.0), evict=evict))
    mine = copy.copy(arg)  # resolves (with evict, releasing the object) and copies
    mine += 1
    assert type(mine) is np.ndarray and float(mine[0]) == 1.0 and float(arg[0]) == 0.0
    assert float(copy.deepcopy(arg)[9]) == 9.0, "a second copy of the same proxy works too"


def test_key_of_a_resolved_proxy_is_its_current_value(store: byref.Store) -> None:
    p = arrive(store.proxy(np.zeros(100)))
    assert byref.key_of(p) == byref.key_of(np.zeros(100))
    p += 1
    assert byref.key_of(p) == byref.key_of(np.ones(100))
