"""``byref``: the command line. ``byref serve`` runs the store daemon; ``byref status URL``
shows what it holds.

    byref serve --listen 127.0.0.1:7390 --dir /scratch/byref --memory 8GiB

prints the URL that clients open (``quic://host:port?fingerprint=...``). The token that
authenticates them is in ``~/.config/byref/token`` (made on first start; ``BYREF_TOKEN``
overrides it), which compute nodes sharing the home directory read as they are.
"""

from __future__ import annotations

import argparse
import re
import sys

from . import _native
from .errors import ByrefError

_UNITS = {
    "": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
    "k": 2**10, "kib": 2**10, "m": 2**20, "mib": 2**20, "g": 2**30, "gib": 2**30,
    "t": 2**40, "tib": 2**40,
}  # fmt: skip


def parse_size(text: str) -> int:
    """``8GiB``, ``512MB``, ``1000`` to bytes."""
    match = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", text)
    if not match or match.group(2).lower() not in _UNITS:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 8GiB or 512MB")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="byref", description="byref's command line: the store daemon and its status."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the store daemon (QUIC)")
    serve.add_argument("--listen", default="127.0.0.1:7390", help="UDP address to listen on")
    serve.add_argument("--dir", required=True, help="data directory: disk tier, certificate")
    serve.add_argument("--memory", type=parse_size, default="1GiB", help="memory tier size")
    serve.add_argument("--disk", type=parse_size, help="disk tier size limit")
    serve.add_argument("--metrics", help="serve Prometheus metrics over HTTP on HOST:PORT")
    status = commands.add_parser("status", help="objects, bytes, requests and hits of a daemon")
    status.add_argument("url")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            _native.serve(args.listen, args.dir, args.memory, args.disk, args.metrics)
        else:
            print(_native.status(args.url), end="")
    except ByrefError as e:
        print(f"byref {args.command}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
