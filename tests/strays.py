"""Processes a test run left running.

`make test` marks every process it starts: `BYREF_TEST_RUN=<id>` is in their environment, and
children inherit it (Parsl's worker pools, servers, `ip netns exec` children alike). Run as a
script at the end of the run, this lists every process still carrying the run's mark, kills
it, and exits 1 if there was one: a stray would share ports and cores with the next run.

Tests that leave a process tree behind on purpose (a Parsl run killed with SIGKILL leaves its
worker pool, which Parsl starts in a session of its own) mark the tree with a mark of their
own and end it with `kill_marked`.
"""

from __future__ import annotations

import os
import signal
import sys
import time

RUN_MARK = "BYREF_TEST_RUN"
GRACE_SECONDS = 10


def marked(name: str, value: str) -> dict[int, str]:
    """The live processes whose environment has `name=value`: pid -> command line."""
    needle = f"{name}={value}".encode()
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = f.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # exited meanwhile, or a zombie (no environment to read)
            continue
    return found


def kill_marked(name: str, value: str, keep: frozenset[int] = frozenset()) -> dict[int, str]:
    """SIGKILL to every process marked `name=value` but those in `keep`; returns those it
    killed."""
    found = {pid: cmd for pid, cmd in marked(name, value).items() if pid not in keep}
    for pid in found:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return found


def stat_fields(path: str) -> list[str]:
    """The fields of a `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) after the command
    name, which may hold spaces and parentheses: [0] the state ("T": stopped), [1] the
    parent's pid."""
    with open(path) as f:
        return f.read().rsplit(")", 1)[1].split()


def _ancestors() -> frozenset[int]:
    """This process and those above it (make, the shell of its recipe): marked, not strays."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        pid = int(stat_fields(f"/proc/{pid}/stat")[1])
    return frozenset(pids)


def main() -> int:
    run = os.environ.get(RUN_MARK)
    if not run:
        print(f"strays: {RUN_MARK} is not set: nothing to check", file=sys.stderr)
        return 0
    keep = _ancestors()
    # A process told to stop just before the run ended (a worker pool after Parsl's cleanup)
    # is given a few seconds to exit of itself.
    deadline = time.monotonic() + GRACE_SECONDS
    while any(pid not in keep for pid in marked(RUN_MARK, run)) and time.monotonic() < deadline:
        time.sleep(0.2)
    strays = kill_marked(RUN_MARK, run, keep=keep)
    if not strays:
        print("strays: no process of this run is left running")
        return 0
    print(f"strays: {len(strays)} process(es) of this run were still running (now killed):")
    for pid, cmd in sorted(strays.items()):
        print(f"  {pid}: {cmd[:200]}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
