"""Real servers on loopback for the tests: redis-server, a Redis Cluster, moto's S3 server."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port(cluster_bus: bool = False) -> int:
    """A free loopback port; with `cluster_bus`, one whose port + 10000 (where a cluster node
    listens for its peers) is free too."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if not cluster_bus:
            return port
        if port + 10000 <= 65535:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                    return port
                except OSError:
                    continue


def wait_for(check, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start within {timeout}s")
        time.sleep(0.05)


class RedisServer:
    """A `redis-server` on a free 127.0.0.1 port; `stop()` kills it and removes its files."""

    def __init__(self, *extra: str) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is missing: `make test` installs it (apt-get)")
        self.port = free_port(cluster_bus="--cluster-enabled" in extra)
        self.dir = tempfile.mkdtemp(prefix="byref-redis-")
        auth = "--requirepass" in extra
        self.password = extra[extra.index("--requirepass") + 1] if auth else None
        self.proc = subprocess.Popen(
            [
                *("redis-server", "--bind", "127.0.0.1", "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", self.dir, *extra),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: "PONG" in self.cli("PING"), "redis-server")

    def cli(self, *args: str) -> str:
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        done = subprocess.run(
            ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *auth, *args],
            capture_output=True,
            text=True,
        )
        return done.stdout

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """Three cluster-enabled servers joined into one Redis Cluster (no replicas)."""

    def __init__(self) -> None:
        self.nodes = [
            RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf")
            for _ in range(3)
        ]
        addrs = [f"127.0.0.1:{n.port}" for n in self.nodes]
        create = ["redis-cli", "--cluster", "create", *addrs, "--cluster-replicas", "0"]
        subprocess.run(
            [*create, "--cluster-yes"],
            check=True,
            capture_output=True,
        )
        wait_for(
            lambda: all("cluster_state:ok" in n.cli("CLUSTER", "INFO") for n in self.nodes),
            "Redis Cluster",
        )
        self.url = "redis+cluster://" + ",".join(addrs)

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


class MotoS3:
    """moto's S3 server mode on a free 127.0.0.1 port, with one bucket."""

    bucket = "byref-test"

    def __init__(self) -> None:
        moto = Path(shutil.which("moto_server") or "")
        if not moto.name:
            raise RuntimeError("moto_server is missing: `make test` installs moto[server]")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for(self._up, "moto_server")
        request = urllib.request.Request(f"{self.endpoint}/{self.bucket}", method="PUT")
        urllib.request.urlopen(request).close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _up(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def url(self, prefix: str, bucket: str | None = None) -> str:
        return (
            f"s3://{bucket or self.bucket}/{prefix}?endpoint={self.endpoint}"
            "&region=us-east-1&allow_http=true"
        )

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QuicDaemon:
    """`byref serve` on a free UDP port of 127.0.0.1, with its own data directory."""

    def __init__(self, directory: Path, *extra: str) -> None:
        self.directory = directory
        self.port = free_udp_port()
        self.extra = extra
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "byref", "serve", "--listen", f"127.0.0.1:{self.port}",
             "--dir", str(self.directory), *self.extra],
            stdout=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("quic://"):
            self.process.kill()
            raise RuntimeError(f"byref serve printed {self.url!r}, not its URL")

    def stop(self) -> int:
        """SIGTERM, as an admin would; returns the exit status."""
        self.process.terminate()
        return self.process.wait(timeout=60)

    def gets_served(self) -> int:
        """GET requests served so far, from `byref status`."""
        return requests_served(self.url)["get"]


def requests_served(url: str) -> dict[str, int]:
    """A byref server's (daemon's or peer's) requests so far per operation, from `byref
    status`."""
    status = subprocess.run(
        [sys.executable, "-m", "byref", "status", url], capture_output=True, text=True, check=True
    ).stdout
    prefix = "byref_requests_total{op="
    return {
        line[len(prefix) + 1 : line.index('"}')]: int(line.split()[1])
        for line in status.splitlines()
        if line.startswith(prefix)
    }
