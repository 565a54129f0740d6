"""Fixtures: a fresh store of every local kind, and a fresh Python process to resolve in."""

from __future__ import annotations

import os
import pickle
import secrets
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import byref

from .servers import MotoS3, QuicDaemon, RedisCluster, RedisServer

# moto accepts any credentials; set them before any S3 store opens, so object_store never
# looks for others (such as an instance-metadata endpoint off this machine).
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
# Tests must not pick up a developer's own byref configuration, nor leave records of their
# stores in it (byref_core::store_id): a fresh configuration directory for the session.
os.environ.pop("BYREF_URL", None)
os.environ["BYREF_CONFIG_DIR"] = tempfile.mkdtemp(prefix="byref-config-")
# Each test sees the store it names, not an object another test left in the machine's node
# cache (keys are content addresses: equal data, equal key); tests/test_node_cache.py turns
# it on where it is what is tested.
os.environ["BYREF_NODE_CACHE"] = "off"
# One token for every daemon the tests start and every client (and child process) they run.
os.environ["BYREF_TOKEN"] = secrets.token_hex(32)


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster() -> Iterator[RedisCluster]:
    cluster = RedisCluster()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoS3]:
    server = MotoS3()
    yield server
    server.stop()


BACKENDS = ["memory", "file", "redis", "redis-chunked", "redis-cluster", "s3", "quic", "peer"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> byref.Store:
    """A new, empty store of every kind, on real servers."""
    unique = uuid.uuid4().hex
    kind = request.param
    if kind == "memory":
        return byref.Store(f"memory://test-{unique}")
    if kind == "file":
        return byref.Store(tmp_path.as_uri())
    if kind == "redis":
        return byref.Store(request.getfixturevalue("redis_server").url, prefix=f"{unique}:")
    if kind == "redis-chunked":
        url = request.getfixturevalue("redis_server").url
        return byref.Store(url, prefix=f"{unique}:", chunk_size=64 * 1024)
    if kind == "redis-cluster":
        url = request.getfixturevalue("redis_cluster").url
        return byref.Store(url, prefix=f"{unique}:", chunk_size=64 * 1024)
    if kind == "quic":
        return byref.Store(request.getfixturevalue("quic_daemon").url)
    if kind == "peer":
        # This process serves it; its own spill directory makes it a store of its own.
        return byref.Store("peer://127.0.0.1", dir=str(tmp_path / "peer"))
    return byref.Store(request.getfixturevalue("moto_s3").url(unique))


@pytest.fixture(scope="session")
def shared_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[QuicDaemon]:
    """One daemon for the tests of this worker process that only put and get objects of their
    own (keys are content addresses: equal values are one object, whoever stored them)."""
    daemon = QuicDaemon(tmp_path_factory.mktemp("daemon"))
    yield daemon
    daemon.stop()


@pytest.fixture(scope="session")
def htex(
    tmp_path_factory: pytest.TempPathFactory,
    shared_daemon: QuicDaemon,
    redis_server: RedisServer,
    moto_s3: MotoS3,
) -> Iterator[None]:
    """Parsl loaded with a local HighThroughputExecutor (2 workers), shared by every test of
    this worker process that asks for it: a pool starts once, not once per module. The
    servers tests hand to its tasks start before it and so stop after it: the run's objects
    in them are released at its cleanup, not waited for on a server already gone."""
    from .htex import loaded

    with loaded(tmp_path_factory.mktemp("parsl")):
        yield


@pytest.fixture
def quic_daemon(tmp_path: Path) -> Iterator[QuicDaemon]:
    """A daemon of its own (an empty store) for one test."""
    daemon = QuicDaemon(tmp_path / "daemon")
    yield daemon
    daemon.stop()


@pytest.fixture
def file_store(tmp_path: Path) -> byref.Store:
    """A new, empty file store (shared between processes)."""
    return byref.Store(tmp_path.as_uri())


def run_python(code: str, *, stdin: bytes = b"", timeout: float = 120) -> bytes:
    """Runs `code` in a fresh interpreter (no state shared with this one); returns stdout."""
    done = subprocess.run(
        [sys.executable, "-c", code], input=stdin, capture_output=True, timeout=timeout
    )
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


def resolve_elsewhere(obj: object, expr: str = "repr(x)") -> str:
    """Pickles `obj`, unpickles it in a fresh process, and returns `expr` evaluated there."""
    code = (
        "import pickle, sys\n"
        "x = pickle.loads(sys.stdin.buffer.read())\n"
        f"sys.stdout.write(str({expr}))\n"
    )
    return run_python(code, stdin=pickle.dumps(obj)).decode()


class UnixUser:
    """A Unix user made for one test: `run` runs a command as it."""

    def __init__(self, name: str, home: Path) -> None:
        import pwd

        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, entry.pw_uid, entry.pw_gid, home

        self.python = _python_for_others()

    def env(self, **extra: str) -> dict[str, str]:
        """The test's environment, with a configuration directory of this user's own, and
        this interpreter's packages on the path of `self.python`."""
        packages = [p for p in sys.path if p and not p.startswith(sys.base_prefix)]
        return {
            **os.environ, "HOME": str(self.home), "BYREF_CONFIG_DIR": str(self.home / "config"),
            "PYTHONPATH": os.pathsep.join(packages), **extra,
        }  # fmt: skip

    def run(self, args: list[str], **kwargs: object) -> subprocess.CompletedProcess[str]:
        kwargs = {"env": self.env(), "text": True, "timeout": 120, **kwargs}
        return subprocess.run(
            args, user=self.uid, group=self.gid, extra_groups=[], capture_output=True,
            **kwargs,  # type: ignore[arg-type]
        )  # fmt: skip


def _python_for_others() -> str:
    """This interpreter, or the system's of the same version where this one is in a directory
    only root may enter (pyenv under /root): what another user can run with these packages."""
    import shutil

    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (sys.executable, shutil.which(version, path="/usr/local/bin:/usr/bin")):
        if candidate and _others_may_run(Path(candidate).resolve()):
            return candidate
    pytest.skip(f"no {version} that other users may run")


def _others_may_run(path: Path) -> bool:
    """Whether every directory up to `path` lets others through and `path` lets them run it."""
    return all(p.stat().st_mode & 0o001 for p in [*path.parents, path])


@pytest.fixture
def second_user() -> Iterator[UnixUser]:
    """A real second Unix user (`useradd`), removed afterwards with what it owns here: the
    multi-user promises are tested against one. Skipped, saying why, without root."""
    import shutil

    if os.geteuid() != 0 or shutil.which("useradd") is None:
        pytest.skip("a second Unix user needs root and useradd")
    name = f"byref-t{uuid.uuid4().hex[:8]}"
    # Not under pytest's directory (root's, 0700): one the user can pass through.
    base = Path(tempfile.mkdtemp(prefix="byref-user-"))
    base.chmod(0o711)
    home = base / name
    shell = "/usr/sbin/nologin"
    subprocess.run(
        ["useradd", "--no-create-home", "--home-dir", str(home), "--shell", shell, name], check=True
    )
    try:
        user = UnixUser(name, home)
        home.mkdir(mode=0o700)
        os.chown(home, user.uid, user.gid)
        yield user
    finally:
        subprocess.run(["pkill", "-KILL", "-u", name], check=False)
        subprocess.run(["userdel", name], check=False)
        shutil.rmtree(base, ignore_errors=True)
