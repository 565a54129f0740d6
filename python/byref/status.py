"""`byref status`: what a daemon or peer server reports, for people (or as Prometheus text)."""

from __future__ import annotations


def samples(prometheus: str) -> dict[str, float]:
    """Each sample of a server's Prometheus text by its name and labels, ``byref_`` left off:
    ``{'objects{tier="memory"}': 3.0, 'uptime_seconds': 12.0, ...}``."""
    found = {}
    for line in prometheus.splitlines():
        if line.startswith("byref_"):
            name, _, value = line.rpartition(" ")
            found[name.removeprefix("byref_")] = float(value)
    return found


def summary(url: str, prometheus: str) -> str:
    """The server at `url`: objects and bytes per tier, connections, traffic, requests."""
    s = samples(prometheus)

    def get(name: str) -> int:
        return int(s.get(name, 0))

    def tier(name: str) -> str:
        objects, stored = get(f'objects{{tier="{name}"}}'), get(f'bytes{{tier="{name}"}}')
        return f"{objects:,} object{'s' * (objects != 1)}, {size(stored)}"

    requests = {
        name[len('requests_total{op="') : -2]: int(n)
        for name, n in s.items()
        if name.startswith("requests_total{") and n
    }
    sent, received = get('quic_bytes_total{dir="sent"}'), get('quic_bytes_total{dir="received"}')
    served = ", ".join(f"{op} {n:,}" for op, n in requests.items()) or "none"
    lines = [
        f"server     {url}",
        f"up         {duration(get('uptime_seconds'))}",
        f"memory     {tier('memory')}",
        f"disk       {tier('disk')}",
        f"clients    {get('connections_open'):,} connected,"
        f" {get('connections_total'):,} since start, {get('refused_total'):,} refused",
        f"sent       {size(sent)} (received {size(received)},"
        f" {get('quic_lost_packets_total'):,} packets lost)",
        f"requests   {served} ({get('misses_total'):,} gets of absent objects)",
    ]
    return "\n".join(lines) + "\n"


def size(n: float) -> str:
    """Bytes as people read them: ``512 B``, ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError


def duration(seconds: int, units: int = 2) -> str:
    """``3d 4h``, ``2h 5m``, ``4m 10s``, ``12s``: the `units` largest units."""
    parts = []
    for unit, length in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if seconds >= length or (unit == "s" and not parts):
            parts.append(f"{seconds // length}{unit}")
            seconds %= length
    return " ".join(parts[:units])
