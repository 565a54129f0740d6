"""Backend-specific behaviour on real servers: TTLs, credentials, failures with typed errors."""

from __future__ import annotations

import os
import pickle
import shutil
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
    """From byref.env when it is private (0600); refused, saying so, when others may read it
    (before: used at 0644, while `credentials` was refused at 0644)."""
    server = RedisServer("--requirepass", "fromfile")
    try:
        config = tmp_path / "byref.env"
        config.write_text("BYREF_REDIS_PASSWORD=fromfile\n")
        code = f"""
import byref
store = byref.Store({server.url!r})
print(store.get(store.put("ok")))
"""
        env = {k: v for k, v in os.environ.items() if k != "BYREF_REDIS_PASSWORD"}
        env["BYREF_CONFIG_DIR"] = str(tmp_path)
        config.chmod(0o644)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        assert "ConfigError" in done.stderr.decode() and "chmod 600" in done.stderr.decode()
        config.chmod(0o600)
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True)
        assert done.stdout.decode().strip() == "ok", done.stderr.decode()
    finally:
        server.stop()


CREDENTIALS_WORKER = """
import pickle, sys, numpy as np, byref
from byref.proxy import _p

def handle_for(url, key, length):
    # What a handle naming `url` holds: version and flags, key, length, URL (varints).
    def varint(v):
        out = b""
        while v >= 0x80:
            out, v = out + bytes([v & 0x7F | 0x80]), v >> 7
        return out + bytes([v])
    return b"\\x20" + bytes.fromhex(key) + varint(length) + varint(len(url)) + url.encode()

for line in sys.stdin:
    url, key, length = line.split()
    proxy = _p(handle_for(url, key, int(length)), "numpy.ndarray")
    try:
        print(float(np.asarray(proxy).sum()), flush=True)
    except byref.ByrefError as e:
        print(type(e).__name__, flush=True)
"""


class Recorder:
    """A TCP server that records what a client sends it, answering nothing: a host that a
    forged handle names, waiting for passwords."""

    def __init__(self) -> None:
        import socket
        import threading

        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.server.settimeout(30)
        try:
            while True:
                conn, _ = self.server.accept()
                conn.settimeout(1)
                try:
                    while chunk := conn.recv(4096):
                        self.received += chunk
                except OSError:
                    pass
                conn.close()
        except OSError:
            return

    def close(self) -> None:
        self.server.close()


def test_redis_passwords_go_only_to_their_own_hosts(tmp_path: Path) -> None:
    """The global password goes to the configured store (BYREF_URL) and to stores the user
    opens; a handle naming another host gets nothing (before, it was sent AUTH with the
    password in clear text); other hosts' passwords come from the credentials file, which
    must be private."""
    configured = RedisServer("--requirepass", "pa55-configured")
    other = RedisServer("--requirepass", "pa55-other")
    recorder = Recorder()
    try:
        data = np.arange(1000.0)
        held = []
        for server in (configured, other):
            os.environ["BYREF_REDIS_PASSWORD"] = server.password or ""
            held.append(byref.Store(server.url).proxy(data))
        os.environ.pop("BYREF_REDIS_PASSWORD")
        handle = byref.handle_of(held[0])
        env = {
            **os.environ,
            "BYREF_CONFIG_DIR": str(tmp_path),
            "BYREF_URL": configured.url,
            "BYREF_REDIS_PASSWORD": "pa55-configured",
        }
        lines = [
            f"{configured.url} {handle.key} {handle.length}",
            f"redis://127.0.0.1:{recorder.port}/0?connect_timeout=1 {handle.key} {handle.length}",
            f"{other.url} {handle.key} {handle.length}",
        ]

        def run(stdin: str) -> list[str]:
            done = subprocess.run(
                [sys.executable, "-c", CREDENTIALS_WORKER],
                input=stdin, env=env, capture_output=True, text=True, timeout=120,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done.stdout.split()

        total = str(float(data.sum()))
        assert run("\n".join(lines) + "\n") == [total, "BackendError", "AuthenticationError"]
        assert b"pa55" not in recorder.received, recorder.received
        credentials = tmp_path / "credentials"
        credentials.write_text(f"redis 127.0.0.1:{other.port} password=pa55-other\n")
        credentials.chmod(0o600)
        assert run(lines[2] + "\n") == [total]
        credentials.chmod(0o644)
        assert run(lines[2] + "\n") == ["ConfigError"]
    finally:
        os.environ.pop("BYREF_REDIS_PASSWORD", None)
        recorder.close()
        configured.stop()
        other.stop()


def _certificate_authority(directory: Path, name: str) -> tuple[Path, Path]:
    """A fresh CA (certificate, key) made with openssl."""
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def test_rediss_trusts_the_configured_ca_and_refuses_others(tmp_path: Path) -> None:
    """`rediss://` against a real TLS redis-server whose certificate a site CA signed: with
    BYREF_REDIS_CA naming that CA the store works; another CA, or none (the public roots),
    is refused before anything is sent."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is missing: it makes the test's certificates")
    ca, ca_key = _certificate_authority(tmp_path, "site-ca")
    other_ca, _ = _certificate_authority(tmp_path, "other-ca")
    key, csr, cert = (tmp_path / f"server.{ext}" for ext in ("key", "csr", "crt"))
    subprocess.run(
        ["openssl", "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1",
         "-keyout", str(key), "-out", str(csr)],
        check=True, capture_output=True,
    )  # fmt: skip
    (tmp_path / "san").write_text("subjectAltName=IP:127.0.0.1\n")
    subprocess.run(
        ["openssl", "x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
         "-CAcreateserial", "-days", "1", "-extfile", str(tmp_path / "san"), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1",
         "--tls-cert-file", str(cert), "--tls-key-file", str(key),
         "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        ping = ["redis-cli", "--tls", "--cacert", str(ca), "-p", str(port), "PING"]
        deadline = time.monotonic() + 10
        while subprocess.run(ping, capture_output=True, text=True).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, "the TLS redis-server did not start"
            time.sleep(0.05)
        code = f"""
import byref
try:
    store = byref.Store("rediss://127.0.0.1:{port}/0?connect_timeout=3")
    print(store.get(store.put("over TLS")))
except byref.ByrefError as e:
    print(type(e).__name__, e)
"""
        env = {k: v for k, v in os.environ.items() if k != "BYREF_REDIS_CA"}
        env["BYREF_CONFIG_DIR"] = str(tmp_path)

        def run(ca_file: Path | None) -> str:
            extra = {"BYREF_REDIS_CA": str(ca_file)} if ca_file else {}
            done = subprocess.run(
                [sys.executable, "-c", code], env={**env, **extra}, capture_output=True,
                text=True, timeout=60,
            )  # fmt: skip
            assert done.returncode == 0, done.stderr
            return done.stdout.strip()

        assert run(ca) == "over TLS"
        for wrong in (other_ca, None):
            refused = run(wrong)
            assert refused.startswith("BackendError") and "certificate" in refused.lower(), refused
    finally:
        server.kill()
        server.wait()


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
