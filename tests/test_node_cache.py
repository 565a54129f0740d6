"""The node cache: processes on one machine resolving the same object from a network store
fetch it once, and share one copy."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import byref

from .conftest import UnixUser
from .servers import QuicDaemon

RESOLVE = """
import pickle, sys, numpy as np
proxy = pickle.loads(sys.stdin.buffer.read())
print(float(np.asarray(proxy).sum()), flush=True)
"""


def _output(p: subprocess.Popen[bytes], timeout: float) -> str:
    assert p.stdout is not None
    out = p.stdout.read().decode().strip()
    assert p.wait(timeout=timeout) == 0
    return out


def _resolvers(wire: bytes, node: Path, n: int) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "BYREF_NODE_CACHE": str(node), "BYREF_CACHE_BYTES": "0"}
    procs = []
    for _ in range(n):
        p = subprocess.Popen(
            [sys.executable, "-c", RESOLVE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        assert p.stdin is not None
        p.stdin.write(wire)
        p.stdin.close()
        procs.append(p)
    return procs


def test_processes_resolving_one_object_fetch_it_once(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path / "daemon")
    try:
        array = np.arange(4_000_000, dtype=np.float64)  # 32 MB
        wire = pickle.dumps(byref.Store(daemon.url).proxy(array))
        procs = _resolvers(wire, tmp_path / "node", 4)
        outs = [_output(p, 120) for p in procs]
        assert outs == [str(float(array.sum()))] * 4
        assert daemon.gets_served() == 1, "one fetch for the node"
        (entry,) = [f for f in (tmp_path / "node").iterdir() if len(f.name) == 64]
        assert entry.stat().st_mode & 0o777 == 0o600
        # Later resolves on the node are hits.
        (again,) = _resolvers(wire, tmp_path / "node", 1)
        assert _output(again, 60) == outs[0]
        assert daemon.gets_served() == 1
    finally:
        daemon.stop()


def test_a_fetcher_killed_holding_the_lock_does_not_block_the_node(tmp_path: Path) -> None:
    """The fetch lock is a kernel lock: killed with -9 mid-fetch, its holder frees it, and
    the process waiting on it fetches the object itself."""
    daemon = QuicDaemon(tmp_path / "daemon")
    try:
        array = np.full(1_000_000, 3.0)
        proxy = byref.Store(daemon.url).proxy(array)
        key = byref.handle_of(proxy).key
        node = tmp_path / "node"
        node.mkdir(mode=0o700)
        holder = subprocess.Popen(
            [sys.executable, "-c",
             f"import fcntl, os, sys, time\n"
             f"fd = os.open({str(node / (key + '.lock'))!r}, os.O_CREAT | os.O_WRONLY, 0o600)\n"
             f"fcntl.flock(fd, fcntl.LOCK_EX)\n"
             f"print('locked', flush=True)\n"
             f"time.sleep(600)\n"],
            stdout=subprocess.PIPE,
        )  # fmt: skip
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        (waiter,) = _resolvers(pickle.dumps(proxy), node, 1)
        time.sleep(1.0)
        assert waiter.poll() is None, "the waiter did not wait for the lock"
        holder.kill()
        holder.wait()
        assert _output(waiter, 60) == str(float(array.sum()))
        assert daemon.gets_served() == 1
    finally:
        daemon.stop()


def test_a_full_node_cache_falls_back_to_a_private_fetch(tmp_path: Path) -> None:
    """The node cache's filesystem cannot take the object (a 1 MiB tmpfs, an 8 MB object):
    the resolve still succeeds, fetching privately, and warns once."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)])
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    daemon = QuicDaemon(tmp_path / "daemon")
    try:
        array = np.full(1_000_000, 2.0)
        wire = pickle.dumps(byref.Store(daemon.url).proxy(array))
        # A bound above the filesystem's size: the filesystem, not the bound, says no.
        env = {
            **os.environ,
            "BYREF_NODE_CACHE": str(mount / "cache"),
            "BYREF_NODE_CACHE_BYTES": "1GiB",
        }
        out = subprocess.run(
            [sys.executable, "-c", RESOLVE], input=wire, env=env, capture_output=True,
            timeout=60,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        assert out.stdout.decode().strip() == str(float(array.sum()))
        assert b"warning: the node cache" in out.stderr
        assert [f for f in (mount / "cache").iterdir() if not f.name.endswith(".lock")] == []
    finally:
        daemon.stop()
        subprocess.run(["umount", str(mount)])


def test_the_node_cache_is_on_by_default_in_dev_shm() -> None:
    """With nothing configured, a network store's object lands in /dev/shm/byref-<uid>."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        pytest.skip("no /dev/shm on this machine")
    import tempfile

    daemon = QuicDaemon(Path(tempfile.mkdtemp(prefix="byref-default-node-")))
    value = np.random.default_rng().random(100_000)
    entry = None
    try:
        proxy = byref.Store(daemon.url).proxy(value)
        entry = shm / f"byref-{os.getuid()}" / byref.handle_of(proxy).key
        env = {k: v for k, v in os.environ.items() if k != "BYREF_NODE_CACHE"}
        out = subprocess.run(
            [sys.executable, "-c", RESOLVE], input=pickle.dumps(proxy), env=env,
            capture_output=True, timeout=60,
        )  # fmt: skip
        assert out.stdout.decode().strip() == str(float(value.sum())), out.stderr
        assert entry.is_file()
        assert (shm / f"byref-{os.getuid()}").stat().st_mode & 0o777 == 0o700
    finally:
        daemon.stop()
        if entry is not None:
            entry.unlink(missing_ok=True)


def test_a_damaged_entry_is_caught_and_fetched_again(tmp_path: Path) -> None:
    """An entry of another length than the handle says (cut short behind byref's back) is
    not served: it is removed and the object fetched again, whole."""
    daemon = QuicDaemon(tmp_path / "daemon")
    try:
        array = np.arange(1_000_000, dtype=np.float64)
        proxy = byref.Store(daemon.url).proxy(array)
        wire = pickle.dumps(proxy)
        node = tmp_path / "node"
        (first,) = _resolvers(wire, node, 1)
        assert _output(first, 60) == str(float(array.sum()))
        entry = node / byref.handle_of(proxy).key
        with entry.open("r+b") as f:
            f.truncate(entry.stat().st_size // 2)
        (again,) = _resolvers(wire, node, 1)
        assert _output(again, 60) == str(float(array.sum()))
        assert daemon.gets_served() == 2
        assert entry.stat().st_size > array.nbytes, "the entry was not put back whole"
    finally:
        daemon.stop()


def test_a_fetcher_killed_mid_fetch_leaves_nothing_visible(tmp_path: Path) -> None:
    """kill -9 of the process streaming an object into the cache: its partial file is never
    an entry, the next process fetches the object whole, and the partial file is cleaned."""
    daemon = QuicDaemon(tmp_path / "daemon")
    try:
        array = np.random.default_rng(1).random(40_000_000)  # 320 MB
        wire = pickle.dumps(byref.Store(daemon.url).proxy(array))
        node = tmp_path / "node"
        (fetcher,) = _resolvers(wire, node, 1)
        deadline = time.monotonic() + 60
        while not any(f.name.endswith(".tmp") and f.stat().st_size > 0 for f in _files(node)):
            assert fetcher.poll() is None, "the fetch ended before it could be killed"
            assert time.monotonic() < deadline, "no partial file appeared"
            time.sleep(0.002)
        fetcher.kill()
        fetcher.wait()
        assert [f for f in _files(node) if len(f.name) == 64] == [], "a partial entry"
        (waiter,) = _resolvers(wire, node, 1)
        assert _output(waiter, 120) == str(float(array.sum()))
        assert daemon.gets_served() == 2
        assert [f.name for f in _files(node) if f.name.endswith(".tmp")] == []
    finally:
        # Not SIGTERM: the daemon would give the dead client's GET its 30 s drain.
        daemon.process.kill()
        daemon.process.wait()


def _files(node: Path) -> list[Path]:
    try:
        return list(node.iterdir())
    except FileNotFoundError:
        return []


def test_the_fetcher_streams_into_the_cache_without_a_whole_copy(tmp_path: Path) -> None:
    """The process that fetches for the node writes the object into the cache as it arrives:
    its peak memory grows by far less than the object (which it then maps, untouched)."""
    daemon = QuicDaemon(tmp_path / "daemon")
    try:
        array = np.ones(25_000_000)  # 200 MB
        wire = pickle.dumps(byref.Store(daemon.url).proxy(array))
        script = (
            "import pickle, sys, numpy as np\n"
            "def hwm():\n"
            "    for line in open('/proc/self/status'):\n"
            "        if line.startswith('VmHWM:'):\n"
            "            return int(line.split()[1]) * 1024\n"
            "proxy = pickle.loads(sys.stdin.buffer.read())\n"
            "before = hwm()\n"
            "shape = np.asarray(proxy).shape\n"
            "print(shape[0], hwm() - before, flush=True)\n"
        )
        env = {**os.environ, "BYREF_NODE_CACHE": str(tmp_path / "node"), "BYREF_CACHE_BYTES": "0"}
        out = subprocess.run(
            [sys.executable, "-c", script], input=wire, env=env, capture_output=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        length, grown = map(int, out.stdout.split())
        assert length == array.size
        assert grown < array.nbytes // 2, f"peak memory grew {grown >> 20} MiB for a 200 MB fetch"
    finally:
        daemon.stop()


def test_another_user_taking_the_cache_name_does_not_turn_it_off(
    tmp_path: Path, second_user: UnixUser
) -> None:
    """Another user creates /dev/shm/byref-<uid> first (in a /dev/shm of the test's own mount
    namespace): this user's processes go on to byref-<uid>-1 and still share one cache
    (before: the node cache was off, silently)."""
    daemon = QuicDaemon(tmp_path / "daemon")
    try:
        value = np.random.default_rng().random(100_000)
        proxy = byref.Store(daemon.url).proxy(value)
        key = byref.handle_of(proxy).key
        uid = os.getuid()
        script = (
            "mount -t tmpfs tmpfs /dev/shm && "
            'setpriv --reuid="$1" --regid="$2" --clear-groups mkdir -m 0700 /dev/shm/byref-"$3" && '
            '"$4" -c "$5" < "$6" && "$4" -c "$5" < "$6" && ls /dev/shm/byref-"$3"-1'
        )
        wire = tmp_path / "proxy.pickle"
        wire.write_bytes(pickle.dumps(proxy))
        env = {k: v for k, v in os.environ.items() if k != "BYREF_NODE_CACHE"}
        out = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
             str(second_user.uid), str(second_user.gid), str(uid), sys.executable, RESOLVE,
             str(wire)],
            env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        total = str(float(value.sum()))
        assert out.stdout.split()[:3] == [total, total, key], out.stdout
        assert daemon.gets_served() == 1, "the second process did not find the first's entry"
    finally:
        daemon.stop()
