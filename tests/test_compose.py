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
