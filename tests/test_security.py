"""Trust rules, tried as an attacker would: another Unix user on the login node, a handle from
anyone, a host only a handle names. Each test says what the attack did before it was closed."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import byref

from .conftest import UnixUser
from .servers import QuicDaemon, RedisServer


def python(code: str, interpreter: str = sys.executable) -> list[str]:
    return [interpreter, "-c", textwrap.dedent(code)]


def test_a_changed_proxy_is_stored_again_without_the_users_password(tmp_path: Path) -> None:
    """A worker with BYREF_REDIS_PASSWORD set resolves a proxy from a Redis only the handle
    named, changes it and pickles it again (returns it): the new object goes back to that
    Redis, and no AUTH with the password goes with it (before: `AUTH <password>` was sent)."""
    theirs = RedisServer()
    try:
        value = np.arange(1 << 18, dtype=np.float64)  # 2 MiB: stored, not inline
        blob = pickle.dumps(byref.Store(theirs.url).proxy(value))
        worker = subprocess.run(
            python("""
                import pickle, sys
                p = pickle.loads(sys.stdin.buffer.read())
                p[0] = -7.0
                sys.stdout.buffer.write(pickle.dumps(p))
            """),
            input=blob, capture_output=True, timeout=120,
            env={**os.environ, "BYREF_REDIS_PASSWORD": "s3cret-of-the-user"},
        )  # fmt: skip
        assert worker.returncode == 0, worker.stderr.decode()
        back = pickle.loads(worker.stdout)
        assert back[0] == -7.0 and back[1] == 1.0
        stats = theirs.cli("INFO", "commandstats")
        assert "cmdstat_auth" not in stats, f"the password went to the handle's host: {stats}"
    finally:
        theirs.stop()


def test_a_handle_does_not_open_another_users_file_store(second_user: UnixUser) -> None:
    """Another user makes a world-readable file store and a proxy naming it by URL; this user's
    worker refuses to open it (before: it opened it and unpickled the object)."""
    made = second_user.run(
        python(
            f"""
            import os, pickle, sys, byref
            root = {str(second_user.home)!r} + "/store"
            store = byref.Store("file://" + root)
            proxy = store.proxy(b"their bytes" * 100_000)
            for d, dirs, files in os.walk(root):
                os.chmod(d, 0o755)
                for f in files:
                    os.chmod(os.path.join(d, f), 0o644)
            sys.stdout.buffer.write(pickle.dumps(proxy))
        """,
            second_user.python,
        ),
        env=second_user.env(BYREF_STORE_IDS="off"),
        text=False,
    )
    assert made.returncode == 0, made.stderr
    os.chmod(second_user.home, 0o755)  # readable by anyone, as a careless user's would be
    proxy = pickle.loads(made.stdout)
    with pytest.raises(byref.ConfigError, match="belongs to user"):
        len(proxy)


def test_gc_dead_keeps_a_live_holder_it_cannot_see(tmp_path: Path, second_user: UnixUser) -> None:
    """With /proc mounted hidepid=2 (usual on login nodes), another user's `byref gc --dead
    --apply` on a shared daemon cannot see this user's live process: its references stay
    (before: the process was read as exited and its object dropped)."""
    daemon = QuicDaemon(tmp_path / "daemon")
    holder = subprocess.Popen(
        python(f"""
            import sys, byref
            store = byref.Store({daemon.url!r})
            life = byref.ProcessLifetime(store)
            print(store.put(b"held" * 1000, lifetime=life), flush=True)
            sys.stdin.read()  # alive until the test closes stdin
        """),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdin is not None
        key = holder.stdout.readline().strip()
        assert len(key) == 64, key
        gc = subprocess.run(
            ["unshare", "-m", "--propagation", "private", "sh", "-c",
             'mount -t proc -o hidepid=2 proc /proc && exec setpriv --reuid="$1" --regid="$2" '
             '--clear-groups -- "$3" -m byref gc --dead --apply --store "$4"',
             "sh", str(second_user.uid), str(second_user.gid), second_user.python, daemon.url],
            env=second_user.env(), capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        if gc.returncode != 0 and "mount" in gc.stderr:
            pytest.skip(f"cannot mount /proc with hidepid=2 here: {gc.stderr.strip()}")
        assert gc.returncode == 0, gc.stderr
        assert byref.Store(daemon.url).get(key) == b"held" * 1000, gc.stdout
        assert "hides it" in gc.stdout + gc.stderr, gc.stdout
        holder.stdin.close()
        assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        daemon.stop()
