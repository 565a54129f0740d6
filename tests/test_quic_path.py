"""QUIC between two "hosts" (network namespaces joined by a veth pair): packets grow to what
the path carries, the kernel sends them in batches (GSO), and a bulk transfer is not mistaken
for an MTU black hole. The daemon's own transport counters (`byref status`) tell."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import byref

from .servers import QuicDaemon, VethPair, in_netns, server_status

ROUND_TRIP = """
import os, sys
os.environ.update(BYREF_CACHE_BYTES="0", BYREF_NODE_CACHE="off")  # the get crosses the path
import numpy as np, byref
store = byref.Store(sys.argv[1])
data = np.random.default_rng(7).integers(0, 255, 64 << 20, dtype=np.uint8)
key = store.put(data)
assert np.array_equal(store.get(key), data)
print("ok")
"""


@pytest.fixture(params=[1500, 9000], ids=["mtu1500", "mtu9000"])
def path(request) -> Iterator[tuple[VethPair, int]]:
    try:
        pair = VethPair(request.param)
    except OSError as e:
        pytest.skip(str(e))
    try:
        yield pair, request.param
    finally:
        pair.close()


def test_a_bulk_transfer_uses_the_largest_packets_the_path_carries(path, tmp_path: Path) -> None:
    pair, mtu = path
    daemon = QuicDaemon(tmp_path / "daemon", host=pair.server_ip, netns=pair.server)
    try:
        done = subprocess.run(
            [*in_netns(pair.client), sys.executable, "-c", ROUND_TRIP, daemon.url],
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.stdout.strip() == "ok", done.stderr
        status = server_status(daemon.url, netns=pair.client)
    finally:
        daemon.stop()
    largest = mtu - 28  # the path's MTU less the IPv4 and UDP headers
    # Discovery stops within 20 bytes of the largest size that gets through.
    assert largest - 20 <= status["quic_mtu_bytes"] <= largest, status
    # Losses from a receiver that falls behind were not read as a black hole (they were, when
    # quinn's batches of jumbo datagrams overran what one send call may carry).
    assert status["quic_black_holes_total"] == 0, status
    # The 64 MB back to the client went out several datagrams per system call.
    calls = status["quic_send_calls_total"]
    assert status['quic_datagrams_total{dir="sent"}'] > 3 * calls, status
    # And most of the put arrived in full-size datagrams.
    received = status['quic_bytes_total{dir="received"}']
    assert received / status['quic_datagrams_total{dir="received"}'] > 0.5 * largest, status


def test_a_window_that_is_not_a_size_is_a_config_error(monkeypatch) -> None:
    monkeypatch.setenv("BYREF_QUIC_WINDOW", "lots")
    with pytest.raises(byref.ConfigError, match='BYREF_QUIC_WINDOW="lots"'):
        byref.Store(f"quic://127.0.0.1:9?fingerprint={'0' * 64}")
