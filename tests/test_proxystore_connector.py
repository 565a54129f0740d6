"""``byref.proxystore.Connector`` under ProxyStore's own Store API, on every byref store, and
with Parsl's ProxyStoreSerializer on a real HTEX."""

from __future__ import annotations

import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import byref

proxystore_store = pytest.importorskip("proxystore.store")
import byref.proxystore  # noqa: E402

from .conftest import resolve_elsewhere  # noqa: E402


@pytest.fixture
def ps_store(store: byref.Store) -> Iterator[object]:
    connector = byref.proxystore.Connector(store.url)
    name = f"byref-{uuid.uuid4().hex}"
    with proxystore_store.Store(name, connector, register=True) as ps:
        yield ps


def test_store_api_round_trips(ps_store) -> None:
    array = np.arange(100_000, dtype=np.float64)
    key = ps_store.put(array)
    assert ps_store.exists(key)
    np.testing.assert_array_equal(ps_store.get(key), array)
    keys = ps_store.put_batch([b"a" * 10, {"x": 1}, array])
    assert ps_store.get(keys[1]) == {"x": 1}
    ps_store.evict(key)
    ps_store.evict(keys[2])  # the same bytes twice: gone with the second evict
    assert not ps_store.exists(key)
    assert ps_store.get(key) is None
    ps_store.evict(key)  # absent: no error, as ProxyStore's connectors


def test_proxies_resolve_in_another_process(ps_store, store: byref.Store) -> None:
    if store.url.startswith("memory://"):
        pytest.skip("a memory store lives in one process")
    proxy = ps_store.proxy(np.arange(1000.0), evict=True)
    assert resolve_elsewhere(proxy, "float(x.sum())") == "499500.0"
    wire = pickle.dumps(proxy)
    assert len(wire) < 2000


def test_the_connector_config_carries_no_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # ProxyStore pickles the config into every proxy: the password must stay in the environment.
    monkeypatch.setenv("BYREF_REDIS_PASSWORD", "hunter2")
    connector = byref.proxystore.Connector("redis://127.0.0.1:1/0")
    config = connector.config()
    assert "hunter2" not in repr(config)
    assert type(byref.proxystore.Connector.from_config(config)) is byref.proxystore.Connector


def total(x):
    import numpy as np

    return float(np.asarray(x).sum())


def test_parsl_proxystore_serializer_on_a_real_htex(tmp_path: Path) -> None:
    pytest.importorskip("parsl")
    from parsl import python_app
    from parsl.serialize.facade import additional_methods_for_deserialization, methods_for_data
    from parsl.serialize.proxystore import ProxyStoreSerializer

    from .htex import loaded

    ps = proxystore_store.Store(
        "byref-parsl", byref.proxystore.Connector((tmp_path / "store").as_uri()), register=True
    )
    serializer = ProxyStoreSerializer(store=ps, should_proxy=byref.Policy().should_proxy)
    saved = dict(methods_for_data)
    for identifier, parsls in saved.items():  # to read results, which workers send in Parsl's
        additional_methods_for_deserialization.setdefault(identifier, parsls)
    methods_for_data.clear()
    methods_for_data[serializer.identifier] = serializer
    try:
        app = python_app(total)
        with loaded(tmp_path / "runinfo"):
            x = np.arange(1 << 18, dtype=np.float64)
            assert app(x).result() == float(x.sum())
    finally:
        methods_for_data.clear()
        methods_for_data.update(saved)
        ps.close()
    # The argument went through the byref store.
    assert any(p.is_file() for p in (tmp_path / "store").rglob("*"))
