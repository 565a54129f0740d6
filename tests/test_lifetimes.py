"""Lifetimes, holders and collection (issue 17): every lifetime on every store, reaping after
kill -9 and across "hosts", a capped file store, and ``byref ls/du/gc``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import byref


def holders_of(store: byref.Store) -> dict[str, list[str]]:
    """Key -> holder tags, holder records left out."""
    return {o.key: sorted(o.holders) for o in store.ls() if o.kind != "holder"}


def wait_until(check, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.05)


def test_a_context_lifetime_releases_what_it_stored_and_nothing_else(store: byref.Store) -> None:
    value = np.arange(50_000)
    plain = store.put(value)
    other = store.put(b"k" * 1000)
    with byref.ContextLifetime(store, label="block") as life:
        proxy = store.proxy(value, lifetime=life)
        mine = store.put({"x": np.ones(10)}, lifetime=life)
        many = store.put_many([b"1" * 100, b"2" * 100], lifetime=life)
        assert byref.handle_of(proxy).key == plain
        held = holders_of(store)
        assert held[plain] == sorted([life.tag, "0" * 16])
        assert all(held[k] == [life.tag] for k in [mine, *many])
        records = [o for o in store.ls() if o.kind == "holder"]
        assert [r.holders for r in records] == [(life.tag,)]
        assert store.stats()["holders"][life.tag]["label"] == "block"
    assert holders_of(store) == {plain: ["0" * 16], other: ["0" * 16]}
    assert [o for o in store.ls() if o.kind == "holder"] == []
    assert np.array_equal(store.get(plain), value)
    with pytest.raises(byref.ConfigError, match="closed"):
        store.put(b"late", lifetime=life)
    assert life.close() == (0, 0)


def test_a_lease_ends_on_time_unless_extended(store: byref.Store) -> None:
    lease = byref.LeaseLifetime(store, 1.0, label="hand-off")
    key = store.put(os.urandom(3000), lifetime=lease)
    lease.extend(2.5)
    time.sleep(1.3)
    assert store.exists(key), "extended past its first end"
    # One record: the extension's; the first was released once the new one was written.
    assert len([o for o in store.ls() if o.kind == "holder"]) == 1
    # Its objects, then its record.
    wait_until(lambda: store.ls() == [], "the lease released everything", timeout=8)
    with pytest.raises(byref.ConfigError, match="ended"):
        lease.extend(10)


HOLDER = """
import json, os, sys, byref
store = byref.Store(sys.argv[1])
run = byref.ProcessLifetime(store, label="run")
ctx = byref.ContextLifetime(store, label="block").__enter__()
lease = byref.LeaseLifetime(store, 3600, label="lease")
both = os.urandom(5000)
out = {
    "run": [store.put(os.urandom(4000), lifetime=run) for _ in range(3)],
    "ctx": [store.put(os.urandom(1000), lifetime=ctx)],
    "lease": [store.put(os.urandom(100), lifetime=lease)],
    "plain": [store.put(os.urandom(200)), store.put(both)],
    "both": store.put(both, lifetime=run),
    "tags": [run.tag, ctx.tag, lease.tag],
}
print(json.dumps(out), flush=True)
sys.stdin.read()
"""


def start_holder(url: str, prefix: list[str] | None = None) -> tuple[subprocess.Popen, dict]:
    child = subprocess.Popen(
        [*(prefix or []), sys.executable, "-c", HOLDER, url],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdout is not None
    line = child.stdout.readline()
    assert line, "the holder process failed"
    return child, json.loads(line)


@pytest.fixture
def shared_store(store: byref.Store) -> byref.Store:
    if store.url.startswith("memory://"):
        pytest.skip("a memory store lives in one process")
    return store


def test_gc_dead_drops_what_a_killed_process_held_and_nothing_a_live_one_holds(
    shared_store: byref.Store,
) -> None:
    store = shared_store
    victim, dead = start_holder(store.url)
    alive, live = start_holder(store.url)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    everything = holders_of(store)
    assert set(dead["run"] + dead["ctx"] + live["run"]) <= set(everything)

    plan = store.gc(dead=True)  # a dry run
    assert plan["dry_run"] and holders_of(store) == everything
    dropped = {(d["key"], d["holder"]) for d in plan["drops"]}
    run_tag, ctx_tag, lease_tag = dead["tags"]
    want = {(k, run_tag) for k in [*dead["run"], dead["both"]]} | {(dead["ctx"][0], ctx_tag)}
    assert {d for d in dropped if d[0] not in records(store)} == want
    # 3 run objects, the block's, and both holders' records; "both" stays, held plainly.
    assert plan["objects"] == 6
    assert plan["unknown"] == {}

    done = store.gc(dead=True, dry_run=False)
    assert done["released"]["references"] == len(plan["drops"])
    after = holders_of(store)
    for key in dead["run"] + dead["ctx"]:
        assert key not in after
    assert after[dead["both"]] == ["0" * 16]
    assert after[dead["lease"][0]] == [lease_tag], "a lease outlives its process"
    for key in live["run"] + live["ctx"]:
        assert key in after, "a live process's reference was dropped"
    tags = {t for o in store.ls() if o.kind == "holder" for t in o.holders}
    assert tags == {lease_tag, *live["tags"]}, "the dead holders' records went too"

    # The live one, exiting normally, releases its process and block lifetimes itself.
    alive.communicate(b"")
    assert alive.returncode == 0
    left = holders_of(store)
    for key in live["run"] + live["ctx"]:
        assert key not in left


def records(store: byref.Store) -> set[str]:
    return {o.key for o in store.ls() if o.kind == "holder"}


UNSHARE = shutil.which("unshare")


def on_other_host(*command: str) -> list[str]:
    """`command` in a UTS namespace of its own, whose hostname is `otherhost`."""
    return [UNSHARE, "--uts", "sh", "-c", 'hostname otherhost && exec "$@"', "sh", *command]


def test_a_holder_on_another_host_is_kept_and_reaped_there(file_store: byref.Store) -> None:
    if UNSHARE is None or subprocess.run(on_other_host("true")).returncode != 0:
        pytest.skip("cannot make a UTS namespace here (unshare --uts needs root)")
    store = file_store
    child, held = start_holder(store.url, on_other_host())
    record = store.stats()["holders"][held["tags"][0]]
    assert record["host"] == "otherhost" and record["state"] == "unknown"
    child.send_signal(signal.SIGKILL)
    child.wait()
    # From here, the process on "otherhost" cannot be checked: nothing of it goes.
    plan = store.gc(dead=True, dry_run=False)
    assert plan["drops"] == []
    assert plan["unknown"] == {"on host otherhost": len(held["run"]) + 2}
    # On its own host, it is found gone.
    done = subprocess.run(
        on_other_host(
            sys.executable, "-m", "byref", "gc", "--store", store.url, "--dead", "--apply"
        ),
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    assert "process" in done.stdout and "has exited" in done.stdout, done.stdout
    left = holders_of(store)
    assert all(k not in left for k in held["run"] + held["ctx"])


def test_a_capped_file_store_refuses_what_would_not_fit_before_writing(tmp_path: Path) -> None:
    store = byref.Store(tmp_path.as_uri(), max_size="1MiB")
    first = os.urandom(600_000)
    key = store.put(first)
    with pytest.raises(byref.StoreFull, match="max_size"):
        store.put(os.urandom(600_000))
    # Nothing of the refused put is left, and what was there is whole.
    assert list((tmp_path / "tmp").iterdir()) == []
    assert [o.key for o in store.ls()] == [key]
    assert store.get(key) == first
    # Another reference to stored data takes no room: it is a link.
    assert store.put(first) == key
    store.evict(key)
    store.evict(key)
    # Room again once released (the next measure of the store sees it).
    time.sleep(2.1)
    store.put(os.urandom(600_000))
    assert "max_size=1048576" in store.url


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "byref", *args], capture_output=True, text=True, timeout=120
    )


def test_ls_du_and_gc_from_the_command_line(file_store: byref.Store) -> None:
    url = file_store.url
    plain = file_store.put(np.arange(1000))
    raw = file_store.put(b"r" * 10)
    with byref.ContextLifetime(file_store, label="cli test") as life:
        held = file_store.put(b"h" * 2000, lifetime=life)
        ls = cli("ls", "--store", url)
        assert ls.returncode == 0, ls.stderr
        rows = {line.split()[0]: line.split() for line in ls.stdout.splitlines()[1:]}
        assert rows[plain][3] == "pickle" and rows[plain][-1] == "-"
        assert rows[held][-1] == life.tag
        assert any(r[3] == "holder" for r in rows.values())
        du = cli("du", "--store", url)
        assert du.returncode == 0, du.stderr
        assert "3 objects" in du.stdout and "cli test" in du.stdout, du.stdout
    time.sleep(2.1)  # references record whole seconds
    dry = cli("gc", "--store", url, "--older-than", "1s")
    assert dry.returncode == 0, dry.stderr
    assert "would drop 2 references" in dry.stdout and "--apply" in dry.stdout, dry.stdout
    assert file_store.exists(plain) and file_store.exists(raw)
    done = cli("gc", "--store", url, "--older-than", "1s", "--apply")
    assert "dropped 2 references; 2 objects" in done.stdout, done.stdout
    assert file_store.ls() == []
    assert cli("gc", "--store", url).returncode == 2
    assert cli("gc", "--store", url, "--older-than", "soon").returncode == 2


def test_a_forked_child_exiting_releases_nothing_its_parent_holds(file_store: byref.Store) -> None:
    code = f"""
import os, sys, byref
store = byref.Store({file_store.url!r})
life = byref.ProcessLifetime(store)
key = store.put(os.urandom(1000), lifetime=life)
pid = os.fork()
if pid == 0:
    sys.exit(0)  # runs the child's exit hooks
os.waitpid(pid, 0)
print(store.exists(key))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"
    # The parent's own exit released it.
    assert file_store.ls() == []
