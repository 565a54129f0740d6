"""Real servers for the tests and benchmarks: redis-server, a Redis Cluster, moto's S3 server,
byref's daemon; on loopback, or inside a network namespace of a veth pair (two "hosts")."""

from __future__ import annotations

import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from byref.status import samples


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

    def __init__(self, *extra: str, host: str = "127.0.0.1", netns: str | None = None) -> None:
        if shutil.which("redis-server") is None:
            raise RuntimeError("redis-server is missing: `make test` installs it (apt-get)")
        self.host, self.prefix = host, in_netns(netns)
        self.port = free_port(cluster_bus="--cluster-enabled" in extra)
        self.dir = tempfile.mkdtemp(prefix="byref-redis-")
        auth = "--requirepass" in extra
        self.password = extra[extra.index("--requirepass") + 1] if auth else None
        self.proc = subprocess.Popen(
            [
                *self.prefix,
                *("redis-server", "--bind", host, "--port", str(self.port)),
                *("--save", "", "--appendonly", "no", "--dir", self.dir, *extra),
                # Off loopback, Redis refuses clients without a password unless told.
                *(("--protected-mode", "no") if host != "127.0.0.1" else ()),
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            wait_for(lambda: "PONG" in self.cli("PING"), "redis-server")
        except RuntimeError:
            self.stop()
            raise

    def cli(self, *args: str) -> str:
        auth = ["-a", self.password, "--no-auth-warning"] if self.password else []
        done = subprocess.run(
            [*self.prefix, "redis-cli", "-h", self.host, "-p", str(self.port), *auth, *args],
            capture_output=True,
            text=True,
        )
        return done.stdout

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def bytes_sent(self) -> int:
        """Bytes sent to clients so far (`INFO stats`)."""
        info = self.cli("INFO", "stats")
        return int(next(x for x in info.splitlines() if x.startswith("total_net_output_bytes:"))
                   .split(":")[1])  # fmt: skip

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
        if shutil.which("moto_server") is None:
            raise RuntimeError("moto_server is missing: `make test` installs moto[server]")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).with_name("moto_server.py")),
             "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
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
    """A free UDP port of 127.0.0.1, below the kernel's ephemeral range: every socket bound to
    port 0 (the many QUIC clients of tests running beside) draws from that range, and took a
    port found free there before its test could bind it ("Address already in use")."""
    try:
        ephemeral = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        low = int(ephemeral[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    for _ in range(1000):
        port = random.randrange(10000, max(low, 10001))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free UDP port of 127.0.0.1 in 10000-{low} after 1000 tries")


class QuicDaemon:
    """`byref serve` on a free UDP port of 127.0.0.1 (or of `host` in namespace `netns`), with
    its own data directory."""

    def __init__(
        self, directory: Path, *extra: str, host: str = "127.0.0.1", netns: str | None = None
    ) -> None:
        self.directory = directory
        self.host, self.prefix = host, in_netns(netns)
        self.port = free_udp_port()
        self.extra = extra
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            [*self.prefix, sys.executable, "-m", "byref", "serve",
             "--listen", f"{self.host}:{self.port}", "--dir", str(self.directory), *self.extra],
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

    def bytes_sent(self) -> int:
        """UDP payload bytes sent so far, from `byref status`."""
        return int(server_status(self.url)['quic_bytes_total{dir="sent"}'])


def server_status(url: str, netns: str | None = None) -> dict[str, float]:
    """A byref server's (daemon's or peer's) metrics, from `byref status` (asked from namespace
    `netns`): each sample by its name and labels, `byref_` left off."""
    status = subprocess.run(
        [*in_netns(netns), sys.executable, "-m", "byref", "status", "--prometheus", url],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return samples(status)


def requests_served(url: str) -> dict[str, int]:
    """A byref server's requests so far per operation."""
    prefix = 'requests_total{op="'
    return {
        name[len(prefix) : -2]: int(value)
        for name, value in server_status(url).items()
        if name.startswith(prefix)
    }


def worker_subnet(prefix: str) -> str:
    """A /24 of `prefix` (such as "10.213") for this pytest-xdist worker alone (gw0: .0, gw1:
    .1, ...): addresses tests give interfaces of this namespace must not collide with those of
    a test running beside them."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    return f"{prefix}.{int(worker) % 256}"


def in_netns(netns: str | None) -> list[str]:
    """The command prefix that runs a program in network namespace `netns` (none: here)."""
    return ["ip", "netns", "exec", netns] if netns else []


class VethPair:
    """Two network namespaces joined by a veth pair of the given MTU: two hosts on one machine,
    as far as the network goes (the filesystem, and so the daemon's token, is shared). The
    server end is `server` at `server_ip`, the other `client`. Raises `OSError` where
    namespaces cannot be made (not root, no iproute2). `close()` removes both."""

    def __init__(self, mtu: int, subnet: str = "10.215.0") -> None:
        tag = f"{os.getpid() % 100000}"
        self.server, self.client = f"byref-a{tag}", f"byref-b{tag}"
        self.server_ip, self.client_ip = f"{subnet}.1", f"{subnet}.2"
        try:
            for name in (self.server, self.client):
                _ip("netns", "add", name)
            _ip("link", "add", f"vba{tag}", "type", "veth", "peer", "name", f"vbb{tag}")
            for name, link, address in (
                (self.server, f"vba{tag}", self.server_ip),
                (self.client, f"vbb{tag}", self.client_ip),
            ):
                _ip("link", "set", link, "netns", name)
                _ip("-n", name, "addr", "add", f"{address}/24", "dev", link)
                _ip("-n", name, "link", "set", link, "mtu", str(mtu), "up")
                _ip("-n", name, "link", "set", "lo", "up")
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            self.close()
            raise OSError(f"cannot create network namespaces (needs root and iproute2): {e}") from e

    def close(self) -> None:
        for name in (self.server, self.client):
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)
