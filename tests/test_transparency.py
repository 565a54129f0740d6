"""A proxy answers as its target does where proxy libraries' own test suites look.

One test per gap that `wrapt`'s ObjectProxy tests found in byref.Proxy. Proxies here are made
with the memory store and arrive pickled, unresolved, as on a worker.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import os
import pickle
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import byref


@pytest.fixture(scope="module")
def memory() -> byref.Store:
    return byref.Store("memory://transparency")


def arrive(store: byref.Store, value: object) -> Any:
    return pickle.loads(pickle.dumps(store.proxy(value)))


class Documented:
    """A class with a docstring."""


def function(self: object, other: object = None) -> tuple[object, object]:
    return self, other


class Awaitable:
    def __await__(self) -> Any:
        yield from asyncio.sleep(0).__await__()
        return 42


class Countdown:
    """An async iterator and async context manager that pickles."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.entered = False

    def __aiter__(self) -> Countdown:
        return self

    async def __anext__(self) -> int:
        if self.n == 0:
            raise StopAsyncIteration
        self.n -= 1
        return self.n

    async def __aenter__(self) -> str:
        return "entered"

    async def __aexit__(self, *exc: object) -> None:
        return None


def test_module_and_doc_come_from_the_target(memory: byref.Store) -> None:
    p = arrive(memory, Documented())
    assert p.__module__ == __name__ and p.__doc__ == "A class with a docstring."
    f = arrive(memory, function)
    assert f.__module__ == __name__ and f.__name__ == "function"
    # The classes keep their own, for help() and pickling the class itself.
    assert byref.Proxy.__module__ == "byref.proxy" and "lazy reference" in byref.Proxy.__doc__
    assert pickle.loads(pickle.dumps(byref.Proxy)) is byref.Proxy


def test_fspath(memory: byref.Store, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("inside")
    p = arrive(memory, tmp_path / "f.txt")
    assert os.fspath(p) == str(tmp_path / "f.txt") and isinstance(p, os.PathLike)
    with open(p) as f:
        assert f.read() == "inside"
    assert not isinstance(arrive(memory, [1]), os.PathLike), "only where the target is one"


def test_await_async_for_async_with(memory: byref.Store) -> None:
    awaitable = arrive(memory, Awaitable())
    countdown = arrive(memory, Countdown(3))
    assert inspect.isawaitable(awaitable) and not inspect.isawaitable(countdown)
    assert not inspect.isawaitable(arrive(memory, 1))

    async def use() -> tuple[int, list[int], str]:
        got = await awaitable
        items = [i async for i in countdown]
        async with arrive(memory, Countdown(0)) as entered:
            return got, items, entered

    assert asyncio.run(use()) == (42, [2, 1, 0], "entered")
    assert isinstance(countdown, AsyncIterator)


def test_math_trunc_floor_ceil(memory: byref.Store) -> None:
    x = arrive(memory, -2.5)
    assert (math.trunc(x), math.floor(x), math.ceil(x)) == (-2, -3, -2)


def test_three_argument_pow(memory: byref.Store) -> None:
    assert pow(arrive(memory, 3), 4, 5) == 1
    assert pow(arrive(memory, 3), arrive(memory, 4), arrive(memory, 5)) == 1


def test_a_keyword_argument_named_self(memory: byref.Store) -> None:
    f = arrive(memory, function)
    assert f(self=1, other=2) == (1, 2) and f(3) == (3, None)


def test_operators_between_two_proxies(memory: byref.Store) -> None:
    a, b = arrive(memory, 3), arrive(memory, 4)
    assert a + b == 7 and b - a == 1 and a * b == 12 and a < b and divmod(b, a) == (1, 1)
    s, t = arrive(memory, "ab"), arrive(memory, "cd")
    assert s + t == "abcd" and s != t
    x, y = arrive(memory, [1]), arrive(memory, [2])
    assert x + y == [1, 2]
    x += y
    assert byref.extract(x) == [1, 2]


def test_augmented_assignment_on_immutable_rebinds_only_the_name(memory: byref.Store) -> None:
    a = arrive(memory, 5)
    alias = a
    a += 5
    assert a == 10 and alias == 5


def test_isinstance_with_a_proxy_of_a_class(memory: byref.Store) -> None:
    cls = arrive(memory, Documented)
    assert isinstance(Documented(), cls) and not isinstance(1, cls)
    assert issubclass(Documented, cls) and not issubclass(int, cls)


def test_callable_only_where_the_target_is(memory: byref.Store) -> None:
    assert callable(arrive(memory, function)) and not callable(arrive(memory, [1]))
    assert isinstance(arrive(memory, function), byref.CallableProxy)


class CallableCountdown(Countdown):
    def __call__(self) -> str:
        return "called"


def test_every_combination_of_optional_methods_makes_a_class(memory: byref.Store) -> None:
    p = arrive(memory, CallableCountdown(2))
    assert p() == "called" and isinstance(p, byref.CallableProxy)
    assert isinstance(p, AsyncIterator) and not isinstance(p, os.PathLike)
    for methods in range(64):
        cls = byref.proxy.proxy_class(methods)
        assert cls._byref_optional_methods == methods and issubclass(cls, byref.Proxy)


class Factory:
    def __call__(self) -> str:
        return "an instance was called"


def test_a_proxy_of_a_class_calls_the_class(memory: byref.Store) -> None:
    made = arrive(memory, Factory)()
    assert type(made) is Factory and made() == "an instance was called"
