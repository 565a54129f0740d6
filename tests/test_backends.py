"""Backend-specific behaviour on real servers: TTLs, credentials, failures with typed errors."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
import uuid
from pathlib import Path

import boto3
import numpy as np
import pytest

import byref

from .conftest import run_python
from .servers import MotoS3, RedisCluster, RedisServer, free_port


def test_redis_ttl_expires_proxied_objects(redis_server: RedisServer) -> None:
    store = byref.Store(redis_server.url, prefix=f"{uuid.uuid4().hex}:")
    key = store.put(np.arange(1000), ttl=0.3)
    wire = pickle.dumps(store.proxy(np.arange(2000), ttl=0.3))
    assert store.exists(key)
    time.sleep(0.8)
    assert not store.exists(key)
    with pytest.raises(byref.ObjectNotFound):
        byref.resolve(pickle.loads(wire))


def test_ttl_on_a_store_without_expiry_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(byref.ConfigError, match="ttl"):
        byref.Store(tmp_path.as_uri()).put(1, ttl=5)
    with pytest.raises(ValueError, match="ttl"):
        byref.Store("memory://t").put(1, ttl=-1)


def test_cluster_spreads_objects_over_its_nodes(redis_cluster: RedisCluster) -> None:
    prefix = f"{uuid.uuid4().hex}:"
    store = byref.Store(redis_cluster.url, prefix=prefix)
    arrays = [np.full(1000, i) for i in range(30)]
    keys = [store.put(a) for a in arrays]
    counts = [int(n.cli("DBSIZE").strip()) for n in redis_cluster.nodes]
    assert sum(1 for c in counts if c > 0) >= 2, f"all objects on one node: {counts}"
    for key, a in zip(keys, arrays, strict=True):
        assert np.array_equal(store.get(key), a)


def test_a_dead_redis_fails_fast_with_a_backend_error_naming_it() -> None:
    port = free_port()
    store = byref.Store(f"redis://127.0.0.1:{port}/0", connect_timeout=1, timeout=2)
    with pytest.raises(byref.BackendError, match=f"127.0.0.1:{port}"):
        store.put(np.arange(10))


def test_a_dropped_redis_connection_is_re_established(redis_server: RedisServer) -> None:
    store = byref.Store(redis_server.url, prefix=f"{uuid.uuid4().hex}:")
    key = store.put(np.arange(100))
    redis_server.cli("CLIENT", "KILL", "TYPE", "normal")
    time.sleep(0.2)
    for _ in range(3):  # the first call after the kill may see the dead socket
        try:
            assert np.array_equal(store.get(key), np.arange(100))
            break
        except byref.BackendError:
            time.sleep(0.2)
    else:
        raise AssertionError("no reconnect")


def test_wrong_or_missing_redis_password_is_an_authentication_error() -> None:
    server = RedisServer("--requirepass", "s3cret")
    try:
        code = f"""
import os, byref
for attempt, password in enumerate(["wrong", None, "s3cret"]):
    if password is None:
        os.environ.pop("BYREF_REDIS_PASSWORD", None)
    else:
        os.environ["BYREF_REDIS_PASSWORD"] = password
    store = byref.Store({server.url!r}, prefix=f"t{{attempt}}:")
    try:
        print(store.get(store.put([1, 2])))
    except byref.AuthenticationError as e:
        assert "wrong" not in str(e) and "s3cret" not in str(e), e
        print("AuthenticationError")
"""
        out = run_python(code).decode().split()
        assert out == ["AuthenticationError", "AuthenticationError", "[1,", "2]"], out
    finally:
        server.stop()


def test_redis_password_can_come_from_the_config_file(tmp_path: Path) -> None:
    server = RedisServer("--requirepass", "fromfile")
    try:
        (tmp_path / "byref.env").write_text("BYREF_REDIS_PASSWORD=fromfile\n")
        code = f"""
import byref
store = byref.Store({server.url!r})
print(store.get(store.put("ok")))
"""
        env = {k: v for k, v in os.environ.items() if k != "BYREF_REDIS_PASSWORD"}
        env["BYREF_CONFIG_DIR"] = str(tmp_path)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        assert done.stdout.decode().strip() == "ok", done.stderr.decode()
    finally:
        server.stop()


def test_passwords_in_urls_are_refused() -> None:
    with pytest.raises(byref.ConfigError, match="BYREF_REDIS_PASSWORD") as caught:
        byref.Store("redis://:hunter2@127.0.0.1:6379/0")
    assert "hunter2" not in str(caught.value)


def test_a_chunk_deleted_behind_byrefs_back_is_an_integrity_error(
    redis_server: RedisServer,
) -> None:
    prefix = f"{uuid.uuid4().hex}:"
    store = byref.Store(redis_server.url, prefix=prefix, chunk_size=100_000)
    key = store.put(np.arange(100_000))
    redis_server.cli("DEL", f"{prefix}{{{key}}}:c:3")
    with pytest.raises(byref.IntegrityError, match="chunk 3"):
        store.get(key)


def test_a_missing_bucket_is_a_backend_error_naming_it(moto_s3: MotoS3) -> None:
    store = byref.Store(moto_s3.url("p", bucket="no-such-bucket"))
    with pytest.raises(byref.BackendError, match="no-such-bucket"):
        store.put(np.arange(10))


def test_large_objects_round_trip_through_every_network_backend(
    redis_server: RedisServer, moto_s3: MotoS3
) -> None:
    array = np.random.default_rng(0).random(5_000_000)  # 40 MB: chunked / multipart
    for url in [
        f"{redis_server.url}?prefix={uuid.uuid4().hex}:&chunk_size=8000000",
        moto_s3.url(uuid.uuid4().hex),
    ]:
        store = byref.Store(url)
        proxy = pickle.loads(pickle.dumps(store.proxy(array, evict=True)))
        assert np.array_equal(byref.extract(proxy), array), url


WRITER = """
import sys, numpy as np, byref
store = byref.Store(sys.argv[1])
array = np.random.default_rng(7).random(100_000_000)  # 800 MB
print("writing", flush=True)
store.put(array)
print("done", flush=True)
"""


@pytest.mark.parametrize("kind", ["file", "redis", "s3"])
def test_a_writer_killed_mid_put_leaves_nothing_visible(
    kind: str, tmp_path: Path, redis_server: RedisServer, moto_s3: MotoS3
) -> None:
    prefix = f"{uuid.uuid4().hex}:"
    url = {
        "file": tmp_path.as_uri(),
        "redis": f"{redis_server.url}?prefix={prefix}",
        "s3": moto_s3.url(uuid.uuid4().hex),
    }[kind]
    # Same value, same key: the key the writer would have produced, without storing anything.
    memory = byref.Store("memory://crash")
    key = memory.put(np.random.default_rng(7).random(100_000_000))
    memory.evict(key)
    # Made before the writer starts: building a boto3 client takes longer than the write.
    s3 = boto3.client("s3", endpoint_url=moto_s3.endpoint, region_name="us-east-1")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline() == "writing\n"

    def mid_write() -> bool:
        """Evidence that the write has begun: a temp file, a chunk, a multipart upload."""
        if kind == "redis":
            return bool(redis_server.cli("KEYS", f"{prefix}*").strip())
        if kind == "file":
            return any((tmp_path / "tmp").iterdir())
        return bool(s3.list_multipart_uploads(Bucket=moto_s3.bucket).get("Uploads"))

    deadline = time.monotonic() + 60
    while not mid_write():
        assert writer.poll() is None, "the writer finished before any evidence was seen"
        assert time.monotonic() < deadline, "the writer never started writing"
        time.sleep(0.005)
    writer.kill()
    writer.wait()
    assert mid_write(), "the partial write was cleaned up by a process that was killed"
    store = byref.Store(url)
    assert not store.exists(key), "a partial object is visible"
    with pytest.raises(byref.ObjectNotFound):
        store.get(key)
