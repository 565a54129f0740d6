"""Peer-to-peer: the producing process serves its own objects and workers fetch from it over
QUIC, with no daemon; when the producer is gone, resolving names it."""

from __future__ import annotations

import multiprocessing
import os
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import byref

from .conftest import run_python
from .servers import requests_served
from .test_processes import finish

PRODUCER = """
import pickle, sys, numpy as np, byref
store = byref.Store("peer://127.0.0.1?connect_timeout=2")
proxies = [store.proxy(np.full(1_000_000, float(i))) for i in (1, 2)]
for p in proxies:
    sys.stdout.write(pickle.dumps(p).hex() + "\\n")
sys.stdout.flush()
sys.stdin.read()  # serve until told to stop
"""

RESOLVE = """
import pickle, sys, byref
try:
    print(float(pickle.loads(sys.stdin.buffer.read()).sum()))
except byref.BackendError as e:
    print("BackendError:", e)
"""


def _object_dirs(tmp_path: Path) -> set[Path]:
    """Where producers keep their objects: `/dev/shm` where it exists, else `$TMPDIR`."""
    shm = Path("/dev/shm")
    return set((shm if shm.is_dir() else tmp_path).glob("byref-peer-*"))


@pytest.fixture
def producer(tmp_path: Path):
    """A producer process serving two 8 MB arrays; its object directory in `/dev/shm` (or
    under `tmp_path` without it)."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    before = _object_dirs(tmp_path)
    process = subprocess.Popen(
        [sys.executable, "-c", PRODUCER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=env,
    )
    assert process.stdout is not None
    wires = [bytes.fromhex(process.stdout.readline().decode()) for _ in range(2)]
    # This producer's: the new directory holding its first object (tests running beside may
    # make directories of their own meanwhile).
    key = byref.handle_of(pickle.loads(wires[0])).key
    (objects,) = (d for d in _object_dirs(tmp_path) - before if any(d.rglob(f"{key}*")))
    yield process, wires, objects
    process.kill()
    process.wait()


def test_workers_fetch_from_the_producer_and_are_told_when_it_is_gone(
    producer, tmp_path: Path
) -> None:
    process, (first, second), objects = producer
    assert len(first) < 300, len(first)
    # A fresh process, and this one (whose connection then stays open), fetch from the peer.
    assert run_python(RESOLVE, stdin=first).decode().strip() == "1000000.0"
    assert float(pickle.loads(first).sum()) == 1_000_000.0
    assert objects.is_dir() and objects.stat().st_mode & 0o777 == 0o700

    process.stdin.close()
    assert process.wait(timeout=30) == 0
    # Its object directory went with it.
    assert not objects.exists()
    named = f"peer {process.pid}@"
    # A fresh worker gets no answer; the connected one was told the peer closed.
    message = run_python(RESOLVE, stdin=second).decode()
    assert message.startswith("BackendError:") and named in message and "gone" in message, message
    with pytest.raises(byref.BackendError, match=f"{named}.*gone"):
        pickle.loads(second).sum()


def _child_sums(wire: bytes) -> None:
    assert float(pickle.loads(wire).sum()) == 3.0 * 1000


def test_a_forked_child_fetches_from_its_parent_peer(tmp_path: Path) -> None:
    store = byref.Store("peer://127.0.0.1", dir=str(tmp_path))
    proxy = store.proxy(np.full(1000, 3.0))
    assert byref.handle_of(proxy).url.startswith("quic://127.0.0.1:")
    # The child's store registry starts empty, so it dials the parent like any worker.
    child = multiprocessing.get_context("fork").Process(
        target=_child_sums, args=(pickle.dumps(proxy),)
    )
    child.start()
    finish(child, 60, "forked child hung fetching from its parent")


ONE_PEER = """
import os, pickle, sys, byref, numpy as np
store = byref.Store("peer://127.0.0.1?connect_timeout=2")
value = np.full(100_000, float(os.getpid()))  # each peer's own: no cache answers for another
sys.stdout.write(pickle.dumps(store.proxy(value)).hex() + "\\n")
sys.stdout.flush()
sys.stdin.read()  # serve until told to stop
"""

COUNTING_WORKER = """
import os, pickle, sys, time

def udp_sockets():
    inodes = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        with open(table) as f:
            inodes.update(line.split()[9] for line in f.readlines()[1:])
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:  # the directory's own descriptor, closed by now
            continue
        count += link.startswith("socket:[") and link[8:-1] in inodes
    return count

wires = [bytes.fromhex(line) for line in sys.stdin.readline().split()]
proxies = [pickle.loads(w) for w in wires]  # kept: their stores stay open
assert all(float(p.sum()) > 0 for p in proxies)
print(udp_sockets(), flush=True)
sys.stdin.readline()  # the peers are gone
deadline = time.monotonic() + 10
while udp_sockets() > 0 and time.monotonic() < deadline:
    time.sleep(0.05)
print(udp_sockets(), flush=True)
"""


def test_a_worker_keeps_no_socket_for_peers_that_are_gone() -> None:
    """A worker that resolved (and holds) proxies of ten peers: once the peers exit, it holds
    none of the sockets it used to reach them (it kept one per peer for as long as it lived)."""
    peers = [
        subprocess.Popen(
            [sys.executable, "-c", ONE_PEER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        for _ in range(10)
    ]
    worker = subprocess.Popen(
        [sys.executable, "-c", COUNTING_WORKER],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert worker.stdin is not None and worker.stdout is not None
    try:
        wires = [p.stdout.readline().decode().strip() for p in peers if p.stdout]
        worker.stdin.write(" ".join(wires) + "\n")
        worker.stdin.flush()
        assert int(worker.stdout.readline()) >= 10, "one connection per peer while they live"
        for p in peers:
            assert p.stdin is not None
            p.stdin.close()
            assert p.wait(timeout=30) == 0
        worker.stdin.write("gone\n")
        worker.stdin.flush()
        assert int(worker.stdout.readline()) == 0
    finally:
        for p in [*peers, worker]:
            p.kill()
            p.wait()


SUM_AND_WRITE = """
import pickle, sys, numpy as np
array = np.asarray(pickle.loads(sys.stdin.buffer.read()))
total = float(array.sum())
array[:] = -1.0  # a task writing into its argument: private to this process
print(total, float(array.sum()), flush=True)
"""


def test_a_worker_on_the_producers_host_maps_its_objects(producer) -> None:
    """Same host: the worker maps the producer's shared-memory file (one LOCATE, no GET) and
    writes to its own private copy; the producer's object, and other workers, see no
    change."""
    _, (first, _), objects = producer
    url = byref.handle_of(pickle.loads(first)).url
    env = {**os.environ, "BYREF_NODE_CACHE": "off", "BYREF_CACHE_BYTES": "0"}
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", SUM_AND_WRITE], input=first, env=env, capture_output=True,
            timeout=60,
        )  # fmt: skip
        assert out.stdout.decode().split() == ["1000000.0", "-1000000.0"], out.stderr
    served = requests_served(url)
    assert (served["locate"], served["get"]) == (2, 0), served
    shared = [f for f in objects.rglob("*") if f.is_file() and f.stat().st_size > 1 << 20]
    assert len(shared) == 2, "the two arrays are not one file each"
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in shared)


def test_what_a_killed_producer_left_in_shared_memory_is_swept(producer, tmp_path: Path) -> None:
    """kill -9 leaves the producer's object files in /dev/shm, holding memory; the next
    producer on the host removes them (their lock died with the process) and no live
    producer's."""
    process, _, objects = producer
    if not str(objects).startswith("/dev/shm/"):
        pytest.skip("no /dev/shm on this machine")
    process.kill()
    process.wait()
    assert objects.is_dir(), "kill -9 removed the directory: the test shows nothing"
    # A live producer's directory is kept, whoever sweeps.
    before = _object_dirs(tmp_path)
    live = subprocess.Popen(
        [sys.executable, "-c", PRODUCER], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert live.stdout is not None
    live.stdout.readline()
    try:
        assert not objects.exists(), "a dead producer's objects were left in /dev/shm"
        (kept,) = _object_dirs(tmp_path) - before
        subprocess.run(
            [sys.executable, "-c", "import byref; byref.Store('peer://127.0.0.1')"], check=True
        )
        assert kept.is_dir(), "a live producer's objects were swept"
    finally:
        live.kill()
        live.wait()


def test_threads_opening_one_fixed_port_peer_share_one_server() -> None:
    """Eight threads open the same `peer://127.0.0.1:<port>` at once: one server, one store
    (before: all but one failed with "Address already in use"; then, while the first opener
    had released the per-URL gate but not yet recorded its store, about 1 run in 15 under
    load). Five rounds, each on its own port, so that window is tried five times a run."""
    from concurrent.futures import ThreadPoolExecutor

    from .servers import free_udp_port

    for _ in range(5):
        url = f"peer://127.0.0.1:{free_udp_port()}"
        barrier = threading.Barrier(8)

        def open_it(_: int, url: str = url, barrier: threading.Barrier = barrier) -> str:
            barrier.wait(timeout=30)
            return byref.Store(url).url

        with ThreadPoolExecutor(8) as pool:
            urls = set(pool.map(open_it, range(8)))
        assert len(urls) == 1, urls
