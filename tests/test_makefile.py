"""What `make` targets would do on a machine that lacks things, read from make's own dry run
(`make -n`): the demo must need neither root nor Redis (a login node has neither to give)."""

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def dry_run(target: str, tmp_path: Path) -> str:
    """The commands `make <target>` would run on a machine with no venv, no redis-server and
    no strace (all three pointed at paths that do not exist)."""
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    missing = tmp_path / "missing"
    done = subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-n",
            target,
            f"VENV={tmp_path / 'venv'}",
            f"REDIS_SERVER={missing / 'redis-server'}",
            f"STRACE={missing / 'strace'}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


def test_the_demo_needs_no_root_and_no_redis(tmp_path: Path) -> None:
    demo = dry_run("demo", tmp_path)
    assert "pip install" in demo, demo  # it does set up a fresh machine
    assert "apt-get" not in demo, demo
    assert "redis-server" not in demo, demo


def test_the_tests_install_the_servers_they_run(tmp_path: Path) -> None:
    # The other side of the line above: the dry run does show installs where they are needed.
    assert "apt-get install -y -qq redis-server" in dry_run("test", tmp_path)
