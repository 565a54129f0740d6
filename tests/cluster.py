"""A cluster on one machine: this namespace is the login node (the submitting script, HTEX's
interchange, the stores' servers), each compute node a network namespace on a bridge to it,
with its own address, and, for what runs on it through :meth:`Cluster.launcher`, its own
``/dev/shm`` and hostname (the filesystem is shared, as a cluster's is). Parsl pools run
inside the nodes, one HighThroughputExecutor per node (labelled ``node1``, ``node2``...), so
that a task can be sent to a given node.

Used by ``tests/test_cluster.py`` (small sizes, bytes asserted), ``tests/test_multinode.py``
and ``benches/cluster.py`` (the workloads, timed).
"""

from __future__ import annotations

import shlex
import subprocess
import uuid
from pathlib import Path

from parsl.executors import HighThroughputExecutor
from parsl.launchers import WrappedLauncher
from parsl.providers import LocalProvider

from .servers import worker_subnet


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


class Cluster:
    """A bridge at ``<subnet>.1`` (the login node's address, :attr:`login`) and ``nodes``
    namespaces at ``.11``, ``.12``..., each routed to the others and to the login node through
    it, links of ``mtu`` bytes. Raises ``OSError`` where namespaces cannot be made (not root,
    no iproute2). :meth:`close` removes them."""

    def __init__(self, nodes: int = 2, mtu: int = 1500, prefix: str = "10.213") -> None:
        subnet, tag = worker_subnet(prefix), uuid.uuid4().hex[:6]
        self.bridge = f"brb{tag}"
        self.names = [f"byref-n{i}-{tag}" for i in range(1, nodes + 1)]
        self.login = f"{subnet}.1"
        self.addresses = [f"{subnet}.{10 + i}" for i in range(1, nodes + 1)]
        self._made: list[str] = []
        #: Each node's end of its link on the bridge, in this namespace.
        self.links = [f"vh{i}{tag}" for i in range(1, nodes + 1)]
        try:
            _ip("link", "add", self.bridge, "type", "bridge")
        except (subprocess.CalledProcessError, FileNotFoundError) as e:
            raise OSError(f"cannot create network namespaces (needs root and iproute2): {e}") from e
        try:
            _ip("addr", "add", f"{self.login}/24", "dev", self.bridge)
            _ip("link", "set", self.bridge, "mtu", str(mtu), "up")
            for i, (name, address) in enumerate(zip(self.names, self.addresses, strict=True), 1):
                host, peer = self.links[i - 1], f"vn{i}{tag}"
                _ip("netns", "add", name)
                self._made.append(name)
                _ip("link", "add", host, "type", "veth", "peer", "name", peer)
                _ip("link", "set", host, "master", self.bridge)
                _ip("link", "set", host, "mtu", str(mtu), "up")
                _ip("link", "set", peer, "netns", name)
                _ip("-n", name, "addr", "add", f"{address}/24", "dev", peer)
                _ip("-n", name, "link", "set", peer, "mtu", str(mtu), "up")
                _ip("-n", name, "link", "set", "lo", "up")
                _ip("-n", name, "route", "add", "default", "via", self.login)
        except BaseException:
            self.close()
            raise

    def bytes_to(self, node: int) -> int:
        """Bytes sent to node ``node`` (1-based) so far: every frame its link carried to it,
        from the stores, the interchange and anything else."""
        path = Path("/sys/class/net") / self.links[node - 1] / "statistics" / "tx_bytes"
        return int(path.read_text())

    def hostname(self, node: int) -> str:
        """The hostname of node ``node`` (1-based)."""
        return f"node{node}"

    def prefix(self, node: int) -> list[str]:
        """The command prefix that runs a program on node ``node`` (1-based): in its network
        namespace, with a private ``/dev/shm`` and its own hostname. Its processes share the
        node cache there, the default (the tests turn it off for the processes they start
        elsewhere, which share one ``/dev/shm``)."""
        setup = (
            "mount -t tmpfs -o size=8g,mode=1777 tmpfs /dev/shm && "
            f'hostname {self.hostname(node)} && unset BYREF_NODE_CACHE && exec "$@"'
        )
        name = self.names[node - 1]
        return ["ip", "netns", "exec", name, "unshare", "-m", "-u", "sh", "-c", setup, "node"]

    def launcher(self, node: int) -> WrappedLauncher:
        """A Parsl launcher that starts a worker pool on node ``node``."""
        return WrappedLauncher(prepend=shlex.join(self.prefix(node)))

    def executors(self, workers: int = 2) -> list[HighThroughputExecutor]:
        """One HighThroughputExecutor per node, labelled ``node1``..., its interchange here,
        ``workers`` workers in a pool on its node."""
        return [
            HighThroughputExecutor(
                label=f"node{node}",
                address=self.login,
                loopback_address="127.0.0.1",
                max_workers_per_node=workers,
                provider=LocalProvider(init_blocks=1, max_blocks=1, launcher=self.launcher(node)),
            )
            for node in range(1, len(self.names) + 1)
        ]

    def close(self) -> None:
        for name in self._made:
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True)
