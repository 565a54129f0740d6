"""``byref``: the command line.

    byref serve --listen 127.0.0.1:7390 --dir /scratch/byref --memory 8GiB

runs the store daemon and prints the URL that clients open (``quic://host:port?fingerprint=
...``). The token that authenticates them is in ``~/.config/byref/token`` (made on first
start; ``BYREF_TOKEN`` overrides it), which compute nodes sharing the home directory read as
they are. ``byref status URL`` shows what a daemon holds (``--prometheus``: every counter).

    key=$(byref put --store URL big.h5)      # prints the key
    byref get --store URL "$key" -o copy.h5  # verified against the key before it appears
    byref stat --store URL "$key"
    byref evict --store URL "$key"

move files in and out of any store (``--store`` defaults to ``$BYREF_URL``, else the file
store in ``~/.cache/byref``), with a progress bar on a terminal.

    byref ls [--store URL]                     # key, size, kind, age, holders
    byref du [--store URL]                     # totals, and per holder
    byref gc --dead [--older-than 7d] [--apply]

show what a store holds and who holds it, and release what no live holder holds (a dry run
unless ``--apply``).

    byref explain task.pkl

reports what byref would proxy in a pickled value, and what would fail to pickle or to load
on a worker (exit status 2 if anything would).
"""

from __future__ import annotations

import argparse
import pickle
import sys

from . import _native
from .arguments import DEFAULT_THRESHOLD
from .diagnose import naming_missing_imports
from .errors import ByrefError, WorkerImportError
from .explain import explain
from .status import duration
from .status import size as size_text
from .status import summary as status_summary
from .store import Store


def parse_size(text: str) -> int:
    """``8GiB``, ``512MB``, ``1000`` to bytes, by the daemon's own rule."""
    try:
        return _native.parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


#: The holder tag of plain puts: nobody in particular.
NOBODY = "0" * 16

_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> float:
    """``90s``, ``15m``, ``2h``, ``7d``, ``1w`` (or plain seconds) to seconds."""
    unit = _AGE_UNITS.get(text[-1:].lower())
    number = text[:-1] if unit else text
    try:
        seconds = float(number) * (unit or 1)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"an age is a number with s, m, h, d or w, not {text!r}")
    return seconds


def _age(seconds: int | None) -> str:
    return "-" if seconds is None else duration(seconds, units=1)


def _ls(store: Store) -> None:
    inventory = store.native.inventory(True)
    print(f"{'KEY':64}  {'SIZE':>10}  {'KIND':11}  {'AGE':>5}  HOLDERS")
    for entry in sorted(inventory.objects(), key=lambda e: e.key):
        tags = entry.holders
        held = ",".join(
            (t if t != NOBODY else "-") + (f"x{tags.count(t)}" if tags.count(t) > 1 else "")
            for t in sorted(set(tags))
        )
        kind, age = entry.kind or "-", _age(entry.age)
        print(f"{entry.key}  {size_text(entry.size):>10}  {kind:11}  {age:>5}  {held}")


def _du(store: Store) -> None:
    stats = store.stats()
    print(
        f"{stats['objects']} objects, {size_text(stats['bytes'])}, {stats['references']} references"
        f" ({stats['records']} holder records)"
    )
    print(f"{'HOLDER':16}  {'KIND':7}  {'STATE':9}  {'OBJECTS':>7}  {'SIZE':>10}  WHO")
    for tag, h in sorted(stats["holders"].items(), key=lambda item: -item[1]["bytes"]):
        who = f"pid {h['pid']} on {h['host']}" if "pid" in h else "-"
        if tag == NOBODY:
            who = "plain puts: kept until evicted or collected by age"
        if h.get("label"):
            who += f" ({h['label']})"
        state = h["state"]
        print(
            f"{tag:16}  {h['kind'] or '-':7}  {state:9}  {h['objects']:>7}"
            f"  {size_text(h['bytes']):>10}  {who}"
        )


def _gc(store: Store, args: argparse.Namespace) -> int:
    if not (args.dead or args.older_than or args.holder):
        print(
            "byref gc: say what to release: --dead, --older-than AGE or --holder TAG",
            file=sys.stderr,
        )
        return 2
    report = store.gc(
        dead=args.dead, older_than=args.older_than, holder=args.holder, dry_run=not args.apply
    )
    for drop in report["drops"]:
        print(f"{drop['key']}  {drop['holder']}  {drop['why']}")
    verb = "dropped" if args.apply else "would drop"
    print(
        f"{verb} {report['references']} references; {report['objects']} objects "
        f"({size_text(report['bytes'])}) go with them"
    )
    for why, n in report["unknown"].items():
        print(f"kept {n} references of holders that cannot be checked from here: {why}")
    if not args.apply and report["references"]:
        print("(a dry run: --apply releases them)")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="byref",
        description="byref's command line: the store daemon, and files in and out of stores.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the store daemon (QUIC)")
    serve.add_argument("--listen", default="127.0.0.1:7390", help="UDP address to listen on")
    serve.add_argument("--dir", required=True, help="data directory: disk tier, certificate")
    serve.add_argument("--memory", type=parse_size, default="1GiB", help="memory tier size")
    serve.add_argument("--disk", type=parse_size, help="disk tier size limit")
    serve.add_argument("--metrics", help="serve Prometheus metrics over HTTP on HOST:PORT")
    serve.add_argument(
        "--max-connections", type=int, default=1024, help="connections served at once"
    )
    status = commands.add_parser("status", help="objects, bytes, requests and hits of a daemon")
    status.add_argument("url")
    status.add_argument(
        "--prometheus", action="store_true", help="every counter, in the Prometheus text format"
    )

    def with_store(name: str, help: str) -> argparse.ArgumentParser:
        command = commands.add_parser(name, help=help)
        command.add_argument("--store", help="store URL (default: $BYREF_URL, else ~/.cache/byref)")
        return command

    put = with_store("put", "store files; prints each one's key")
    put.add_argument("files", nargs="+")
    put.add_argument("--ttl", type=float, help="seconds to keep them (stores with expiry)")
    get = with_store("get", "write a stored file's bytes, verified against its key")
    get.add_argument("key")
    get.add_argument("-o", "--output", help="file to write (default: standard output)")
    stat = with_store("stat", "size and kind of stored objects")
    stat.add_argument("keys", nargs="+")
    evict = with_store("evict", "release one reference to each object (the last deletes it)")
    evict.add_argument("keys", nargs="+")
    with_store("ls", "every object: key, size, kind, age, holders")
    with_store("du", "objects, bytes and references: in total and per holder")
    gc = with_store("gc", "release references nobody live holds (a dry run unless --apply)")
    gc.add_argument(
        "--dead",
        action="store_true",
        help="those of holders that are gone: processes exited or killed on this host, "
        "leases past their end, holders with no record",
    )
    gc.add_argument(
        "--older-than", type=parse_age, metavar="AGE", help="those made longer ago (90s, 2h, 7d)"
    )
    gc.add_argument("--holder", metavar="TAG", help="all of one holder's (a tag, as ls shows)")
    gc.add_argument("--apply", action="store_true", help="release them (default: only say what)")
    explain = commands.add_parser(
        "explain",
        help="what byref would proxy in a pickled value, and what would fail on a worker",
    )
    explain.add_argument(
        "file",
        help="a pickle of the value (a task's arguments, say); it is unpickled: trusted files only",
    )
    explain.add_argument(
        "--threshold", type=parse_size, default=DEFAULT_THRESHOLD, help="smallest proxied buffer"
    )
    return parser


def _explain(args: argparse.Namespace) -> int:
    """Prints the report; 2 if it found trouble."""
    with (
        open(args.file, "rb") as file,
        naming_missing_imports(f"the pickle in {args.file}", WorkerImportError),
    ):
        value = pickle.load(file)
    report = explain(value, threshold=args.threshold)
    print(report)
    return 0 if report.ok else 2


def _run(args: argparse.Namespace) -> int:
    if args.command == "explain":
        return _explain(args)
    if args.command == "serve":
        _native.serve(
            args.listen,
            args.dir,
            args.memory,
            args.disk,
            args.metrics,
            max_connections=args.max_connections,
        )
        return 0
    if args.command == "status":
        text = _native.status(args.url)
        print(text if args.prometheus else status_summary(args.url, text), end="")
        return 0
    store = Store(args.store)
    url = store.url
    if args.command == "ls":
        _ls(store)
    elif args.command == "du":
        _du(store)
    elif args.command == "gc":
        return _gc(store, args)
    elif args.command == "put":
        for path in args.files:
            print(_native.put_file(url, path, args.ttl), flush=True)
    elif args.command == "get":
        sys.stdout.flush()
        _native.get_file(url, args.key, args.output)
    elif args.command == "stat":
        for key in args.keys:
            size, encoding, buffers = _native.stat(url, key)
            kind = "raw bytes" if encoding == "bytes" else f"{encoding}, {buffers} buffer(s)"
            print(f"{key}  {size} bytes  {kind}")
    else:
        for key in args.keys:
            deleted = store.evict(key)
            print(f"{key}  {'deleted' if deleted else 'released; other references remain'}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except ByrefError as e:
        print(f"byref {args.command}: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
