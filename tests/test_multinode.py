"""Several "nodes" on one machine: network namespaces, each with its own address on a veth
pair to a bridge where the daemon listens, and its own node cache. Workers on a node share
one fetch; each node fetches once."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

import byref

from .cluster import Cluster
from .servers import free_udp_port, requests_served

RESOLVE = """
import pickle, sys, numpy as np
proxy = pickle.loads(sys.stdin.buffer.read())
print(float(np.asarray(proxy).sum()), flush=True)
"""


@pytest.fixture
def nodes() -> Iterator[tuple[str, list[str]]]:
    """Two nodes on a bridge (:class:`tests.cluster.Cluster`): the bridge's address and the
    nodes' namespaces. Removed afterwards."""
    try:
        cluster = Cluster(nodes=2)
    except OSError as e:
        pytest.skip(str(e))
    try:
        yield cluster.login, cluster.names
    finally:
        cluster.close()


def test_two_nodes_of_three_workers_fetch_twice(nodes, tmp_path: Path) -> None:
    address, names = nodes
    daemon = subprocess.Popen(
        [sys.executable, "-m", "byref", "serve", "--listen", f"{address}:{free_udp_port()}",
         "--dir", str(tmp_path / "daemon")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert daemon.stdout is not None
        url = daemon.stdout.readline().strip()
        assert url.startswith(f"quic://{address}:"), url
        array = np.arange(2_000_000, dtype=np.float64)
        wire = pickle.dumps(byref.Store(url).proxy(array))
        workers = []
        for name in names:
            env = {**os.environ, "BYREF_NODE_CACHE": str(tmp_path / f"cache-{name}")}
            for _ in range(3):
                p = subprocess.Popen(
                    ["ip", "netns", "exec", name, sys.executable, "-c", RESOLVE],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                    env=env,
                )  # fmt: skip
                assert p.stdin is not None
                p.stdin.write(wire)
                p.stdin.close()
                workers.append(p)
        for p in workers:
            assert p.stdout is not None and p.stderr is not None
            out, err = p.stdout.read().decode().strip(), p.stderr.read().decode()
            assert p.wait(timeout=120) == 0, err
            assert out == str(float(array.sum()))
        assert requests_served(url)["get"] == 2
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


PRODUCER = """
import os, pickle, sys, numpy as np, byref
store = byref.Store("peer://")
sys.stdout.buffer.write(pickle.dumps(store.proxy(np.arange(300_000, dtype=np.float64))))
sys.stdout.flush()
os.close(1)  # the handle is out (end of file); sys.stdout does not close its descriptor
sys.stdin.read()  # serves until told to go
"""


def test_a_peer_on_a_node_advertises_the_address_other_nodes_reach(nodes) -> None:
    """`peer://` with no host, on a node whose default route leads to the others: workers on
    another node reach it with no `advertise=` (before: it advertised the hostname, which the
    other node could not resolve to this node)."""
    address, names = nodes
    producer_node, worker_node = names  # each routed to the other through the bridge
    producer = subprocess.Popen(
        ["ip", "netns", "exec", producer_node, sys.executable, "-c", PRODUCER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert producer.stdout is not None and producer.stderr is not None
        wire = producer.stdout.read()
        assert wire, producer.stderr.read().decode()
        node_address = address.rsplit(".", 1)[0] + ".11"
        assert f"quic://{node_address}:".encode() in wire
        worker = subprocess.run(
            ["ip", "netns", "exec", worker_node, sys.executable, "-c", RESOLVE],
            input=wire, capture_output=True, timeout=120,
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr.decode()
        assert worker.stdout.decode().strip() == str(float(sum(range(300_000))))
    finally:
        producer.kill()
        producer.wait(timeout=60)
