"""`byref serve`: the store daemon, run as an admin would, used from Python over real QUIC."""

from __future__ import annotations

import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

import byref
from byref import _native

from .conftest import resolve_elsewhere, run_python
from .servers import QuicDaemon, free_udp_port, server_status, wait_for
from .strays import stat_fields


def test_serve_prints_the_url_and_status_counts_what_it_holds(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path)
    try:
        store = byref.Store(daemon.url)
        proxy = store.proxy(np.arange(1_000_000, dtype=np.float64))
        assert resolve_elsewhere(proxy, "float(x.sum())") == str(float(sum(range(1_000_000))))
        summary = subprocess.run(
            [sys.executable, "-m", "byref", "status", daemon.url],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        lines = dict(line.split(None, 1) for line in summary.splitlines())
        assert lines["server"] == daemon.url, summary
        assert lines["memory"] == "1 object, 7.6 MiB", summary
        assert lines["disk"] == "0 objects, 0 B", summary
        assert lines["clients"].endswith(", 0 refused"), summary
        assert "get 1" in lines["requests"], summary
        assert "byref_" not in summary, summary  # Prometheus text only when asked for
        status = server_status(daemon.url)
        assert status['hits_total{tier="memory"}'] == 1
        assert status['requests_total{op="get"}'] == 1
        assert status["uptime_seconds"] >= 0
    finally:
        assert daemon.stop() == 0


def test_max_connections_bounds_the_clients_served_at_once(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path, "--max-connections", "1")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         f"import byref, sys; s = byref.Store({daemon.url!r}); s.exists('0' * 64); "
         "print('connected', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "connected"
        with pytest.raises(byref.BackendError, match=r"refused|closed"):
            byref.Store(daemon.url + "&connect_timeout=2").put(1)
    finally:
        holder.kill()
        assert daemon.stop() == 0


def test_idle_metrics_clients_cannot_take_the_endpoint_down(tmp_path: Path) -> None:
    """More idle TCP connections than the daemon has file descriptors: puts to its disk tier
    go on meanwhile (before: "Too many open files" for 5 s), and once they go, the metrics
    endpoint answers again (before, the accept loop ended on its first error)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        metrics = s.getsockname()[1]

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))

    daemon = subprocess.Popen(
        [sys.executable, "-m", "byref", "serve", "--listen", f"127.0.0.1:{free_udp_port()}",
         "--dir", str(tmp_path), "--metrics", f"127.0.0.1:{metrics}", "--memory", "1MiB"],
        stdout=subprocess.PIPE, text=True, preexec_fn=few_descriptors,
    )  # fmt: skip
    try:
        assert daemon.stdout is not None
        url = daemon.stdout.readline().strip()
        assert url.startswith("quic://"), url
        idle = [socket.create_connection(("127.0.0.1", metrics)) for _ in range(150)]
        time.sleep(1)
        store = byref.Store(url)
        for i in range(20):  # 2 MiB each: past the 1 MiB memory tier, to disk
            key = store.put(np.full(1 << 18, i, dtype=np.float64))
            assert float(store.get(key)[0]) == i
        for s in idle:
            s.close()
        deadline = time.monotonic() + 20
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{metrics}/", timeout=2) as r:
                    assert b"byref_connections_total" in r.read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the metrics endpoint never came back"
                time.sleep(0.5)
    finally:
        daemon.terminate()
        daemon.wait(timeout=60)


def test_a_hung_daemon_fails_a_request_within_its_timeout(tmp_path: Path) -> None:
    """A daemon stopped mid-session (SIGSTOP: no close, no reset) is reported after the
    request timeout, not after QUIC's 60 s idle timeout."""
    daemon = QuicDaemon(tmp_path)
    # Bytes no earlier test stored: the node cache is keyed by content alone and would
    # answer a get of anything already fetched on this machine without asking the daemon.
    key = byref.Store(daemon.url).put(os.urandom(4096))
    client = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, byref\n"
         f"store = byref.Store({daemon.url!r} + '&timeout=1')\n"
         f"assert store.exists({key!r})\n"
         "print('connected', flush=True)\n"
         "sys.stdin.readline()\n"
         "started = time.monotonic()\n"
         "try:\n"
         f"    store.get({key!r})\n"
         "except byref.BackendError as e:\n"
         "    print(f'{time.monotonic() - started:.1f}', e, flush=True)\n"
         "else:\n"
         "    print('answered', flush=True)\n"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert client.stdout is not None and client.stdout.readline().strip() == "connected"
        os.kill(daemon.process.pid, signal.SIGSTOP)
        # kill() returns before the stop takes effect: on a loaded machine the daemon could
        # still answer a request sent at once.
        wait_for(lambda: _stopped(daemon.process.pid), "the daemon's stop", timeout=10)
        out, err = client.communicate("go\n", timeout=40)
        waited, _, message = out.strip().partition(" ")
        assert waited.replace(".", "", 1).isdigit() and float(waited) < 10, (out, err)
        assert "no answer within" in message, (out, err)
    finally:
        client.kill()
        os.kill(daemon.process.pid, signal.SIGCONT)
        daemon.stop()


def _stopped(pid: int) -> bool:
    """Whether every thread of process `pid` is stopped (state "T" in /proc)."""
    tasks = Path(f"/proc/{pid}/task").iterdir()
    return all(stat_fields(str(t / "stat"))[0] == "T" for t in tasks)


def test_a_restart_keeps_objects_and_url(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path, "--memory", "1MiB")
    small, large = {"small": 1}, np.ones(1 << 18)  # the second spills to disk
    keys = [byref.Store(daemon.url).put(v) for v in (small, large)]
    url = daemon.url
    assert daemon.stop() == 0  # graceful: the memory tier goes to disk
    daemon.start()
    try:
        assert daemon.url == url
        store = byref.Store(daemon.url)
        assert store.get(keys[0]) == small
        assert np.array_equal(store.get(keys[1]), large)
    finally:
        daemon.stop()


def test_a_daemon_killed_mid_spill_cleans_up_at_restart(tmp_path: Path) -> None:
    """kill -9 while a put streams to disk leaves a partial temp file, and nothing else: an
    object's names are its references, so no release or put cut short can leave one without
    the other. The next start removes the partial file (and what a daemon of the earlier
    layout left), says so in its status, and counts nothing of it."""
    daemon = QuicDaemon(tmp_path, "--memory", "1MiB")
    tmp = tmp_path / "store" / "tmp"
    writer = subprocess.Popen(
        [sys.executable, "-c",
         f"import byref; byref.Store({daemon.url!r}).put(bytes(1_000_000_000))"],
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not any(f.stat().st_size > 10_000_000 for f in tmp.glob("*.put")):
            assert time.monotonic() < deadline and writer.poll() is None, "no spill seen"
            time.sleep(0.01)
        daemon.process.kill()
        daemon.process.wait()
    finally:
        writer.kill()
        writer.wait()
    assert any(tmp.glob("*.put")), "the kill left no partial file to clean"
    assert not any((tmp_path / "store" / "objects").rglob("*")), "a partial object has a name"
    # What a daemon of the earlier layout (a reference directory per object) left.
    earlier_key = "cd" * 32
    (tmp_path / "store" / "refs" / earlier_key).mkdir(parents=True)
    (tmp_path / "store" / "refs" / earlier_key / ("0" * 32)).touch()
    (tmp_path / "store" / "objects" / "cd").mkdir()
    (tmp_path / "store" / "objects" / "cd" / earlier_key).write_bytes(b"x" * 1000)

    daemon.start()
    try:
        assert list(tmp.iterdir()) == []
        assert not (tmp_path / "store" / "refs").exists()
        assert not (tmp_path / "store" / "objects" / "cd").exists()
        status = server_status(daemon.url)
        assert status['recovered_at_start{what="temp_files"}'] == 1, status
        assert status['recovered_at_start{what="earlier_layout"}'] == 2, status
        assert status['bytes{tier="disk"}'] == 0, status
        store = byref.Store(daemon.url)
        assert store.get(store.put(b"after the crash")) == b"after the crash"
    finally:
        assert daemon.stop() == 0


def test_a_wrong_token_raises_authentication_error(quic_daemon: QuicDaemon) -> None:
    code = f"""
import byref
try:
    byref.Store({quic_daemon.url!r}).put(1)
except byref.AuthenticationError as e:
    print("refused:", e)
"""
    env = {**os.environ, "BYREF_TOKEN": "00" * 32}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith("refused:") and "wrong token" in out


def test_a_full_daemon_raises_store_full_and_keeps_what_it_has(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path, "--memory", "1MiB", "--disk", "1MiB")
    try:
        store = byref.Store(daemon.url)
        kept = store.put(np.ones(100_000))  # 800 kB: memory
        with pytest.raises(byref.StoreFull):
            store.put(np.zeros(300_000))  # 2.4 MB: fits neither tier
        assert store.exists(kept)
    finally:
        daemon.stop()


def _peak_rss(pid: int) -> int:
    """The process's peak resident memory so far, in bytes (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmHWM")


def test_puts_larger_than_the_memory_tier_stream_to_disk(tmp_path: Path) -> None:
    """Two 200 MB puts at once into `--memory 16MiB`: the bodies go to disk as they arrive,
    so the daemon's memory grows by far less than one of them (it held both whole before)."""
    daemon = QuicDaemon(tmp_path, "--memory", "16MiB")
    try:
        store = byref.Store(daemon.url)
        store.put(b"warm up")  # connection, runtime and tiers set up before the baseline
        before = _peak_rss(daemon.process.pid)
        values = [bytes([i]) * 200_000_000 for i in (1, 2)]
        with ThreadPoolExecutor(2) as pool:
            keys = list(pool.map(store.put, values))
        grown = _peak_rss(daemon.process.pid) - before
        assert grown < 150 << 20, f"the daemon grew by {grown >> 20} MiB for two 200 MB puts"
        for key, value in zip(keys, values, strict=True):
            assert store.get(key) == value
        assert server_status(daemon.url)['objects{tier="disk"}'] == 2
    finally:
        assert daemon.stop() == 0


def test_a_stopped_daemon_gives_a_backend_error_naming_it(tmp_path: Path) -> None:
    daemon = QuicDaemon(tmp_path)
    url = daemon.url
    proxy = pickle.dumps(byref.Store(url).proxy(np.ones(10)))
    daemon.stop()
    out = run_python(
        """
import pickle, sys, byref
p = pickle.loads(sys.stdin.buffer.read())
try:
    p + 1
except byref.BackendError as e:
    print(type(e).__name__, e)
""",
        stdin=proxy,
    ).decode()
    assert out.startswith("BackendError") and url.split("?")[0] in out


def test_a_quic_url_without_fingerprint_is_a_config_error() -> None:
    with pytest.raises(byref.ConfigError):
        _native.status("quic://127.0.0.1:1")


def test_serve_takes_a_data_directory_relative_to_where_it_runs(tmp_path: Path) -> None:
    """`byref serve --dir work/daemon`, as an admin types it (before: "is not a local absolute
    path")."""
    process = subprocess.Popen(
        [sys.executable, "-m", "byref", "serve",
         "--listen", f"127.0.0.1:{free_udp_port()}", "--dir", "work/daemon"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        url = process.stdout.readline().strip()
        assert url.startswith("quic://"), process.stderr.read()
        store = byref.Store(url)
        assert store.get(store.put(b"x" * 2_000_000)) == b"x" * 2_000_000
        assert (tmp_path / "work" / "daemon" / "store").is_dir()
    finally:
        process.terminate()
        assert process.wait(timeout=60) == 0
