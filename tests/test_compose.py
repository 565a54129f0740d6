"""docker-compose.yml parses and names the servers byref users run in containers."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def test_compose_names_redis_minio_and_the_daemon_with_healthchecks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert {"redis", "minio", "byrefd"} <= set(services)
    for name in ("redis", "minio", "byrefd"):
        assert services[name]["healthcheck"]["test"], name
    build = services["byrefd"]["build"]
    dockerfile = (ROOT / build["context"] / build["dockerfile"]).read_text()
    assert "-p byref-daemon --bin byrefd" in dockerfile
    assert 'ENTRYPOINT ["byrefd"' in dockerfile
    assert any(p.endswith("7390/udp") for p in services["byrefd"]["ports"])


def test_docker_compose_accepts_the_file() -> None:
    """Compose's own check of the file (`docker compose config`), where Compose is installed."""
    import shutil
    import subprocess

    import pytest

    docker = shutil.which("docker")
    if (
        docker is None
        or subprocess.run([docker, "compose", "version"], capture_output=True).returncode
    ):
        pytest.skip("docker compose is not installed here: only the YAML's text is checked")
    done = subprocess.run(
        [docker, "compose", "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
