"""docker-compose.yml, the Dockerfile and nginx.conf fit together (checked as files; with
`docker compose config` too where a compose client is installed)."""

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from pickwise.core.config import Settings
from tests.conftest import ROOT

COMPOSE = ROOT / "docker-compose.yml"
SECRETS = ("SECRET_KEY", "POSTGRES_PASSWORD")
# Read by the process manager or libraries rather than by Settings.
NON_SETTINGS_ENV = {"WEB_CONCURRENCY", "PROMETHEUS_MULTIPROC_DIR", "LOG_LEVEL"}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    compose = yaml.safe_load(COMPOSE.read_text())
    assert "pgdata" in compose["volumes"]
    return dict(compose["services"])


def condition(service: dict[str, Any], dependency: str) -> str:
    return str(service["depends_on"][dependency]["condition"])


def test_postgres_keeps_its_data_and_reports_health(services: dict[str, Any]) -> None:
    db = services["db"]
    assert db["image"].startswith("postgres:")
    assert "pgdata:/var/lib/postgresql" in db["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert "ports" not in db


def test_migrations_run_once_before_the_app(services: dict[str, Any]) -> None:
    migrate, app = services["migrate"], services["app"]
    assert migrate["command"] == ["pickwise", "db", "upgrade"]
    assert migrate["restart"] == "no"
    assert condition(migrate, "db") == "service_healthy"
    assert condition(app, "db") == "service_healthy"
    assert condition(app, "migrate") == "service_completed_successfully"
    assert migrate["image"] == app["image"]


def test_app_scales_and_is_checked_for_readiness(services: dict[str, Any]) -> None:
    app = services["app"]
    # A fixed host port or container name would break `docker compose up --scale app=N`.
    assert "ports" not in app and "container_name" not in app
    assert "/readyz" in " ".join(app["healthcheck"]["test"])
    assert app["environment"]["ENVIRONMENT"] == "production"
    assert app["environment"]["PROMETHEUS_MULTIPROC_DIR"] in app["tmpfs"]


def test_proxy_fronts_the_app(services: dict[str, Any]) -> None:
    proxy = services["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert condition(proxy, "app") == "service_healthy"
    assert "./deploy/nginx.conf:/etc/nginx/nginx.conf:ro" in proxy["volumes"]
    nginx = (ROOT / "deploy" / "nginx.conf").read_text()
    assert re.search(r"server app:8000 resolve;", nginx)
    assert "proxy_set_header X-Request-ID" in nginx
    assert re.search(r"location = /metrics \{\s*return 404;", nginx)


def test_secrets_have_no_defaults() -> None:
    text = COMPOSE.read_text()
    for secret in SECRETS:
        uses = re.findall(rf"\$\{{{secret}([^}}]*)\}}", text)
        assert uses, secret
        assert all(use.startswith(":?") for use in uses), f"{secret} must be required: {uses}"
    assert not re.search(r"(?i)(password|secret)[^\n]*:\s*['\"]?[A-Za-z0-9]{6,}['\"]?\s*$", text)


def test_app_environment_names_are_real_settings(services: dict[str, Any]) -> None:
    known = {name.upper() for name in Settings.model_fields} | NON_SETTINGS_ENV
    for name in ("migrate", "app"):
        unknown = set(services[name]["environment"]) - known
        assert not unknown, f"{name}: {unknown} are not read by anything"


def test_image_installs_the_wheel_and_runs_gunicorn() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert 'CMD ["gunicorn", "--config", "deploy/gunicorn.conf.py"' in dockerfile
    assert "USER pickwise" in dockerfile
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", dockerfile, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), f"Dockerfile copies missing {path}"
    # The image runs the wheel built in the first stage, not the source tree.
    build, image = dockerfile.rsplit("\nFROM ", 1)
    assert "pip wheel" in build and "--editable" not in dockerfile
    assert "COPY --from=build /opt/venv /opt/venv" in image
    assert not re.search(r"^COPY (backend|frontend|migrations)\b", image, re.MULTILINE)
    config = (ROOT / "deploy" / "gunicorn.conf.py").read_text()
    assert 'worker_class = "uvicorn_worker.UvicornWorker"' in config
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".env", ".git", "**/.venv"} <= set(ignored)


def _compose_client() -> list[str] | None:
    docker = shutil.which("docker")
    if (
        docker
        and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    ):
        return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    return [standalone] if standalone else None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    client = _compose_client()
    if client is None:
        pytest.skip("no docker compose client on this machine")
    command = [*client, "--project-directory", str(ROOT), "-f", str(COMPOSE), "config", "-q"]
    env = {"PATH": str(Path(client[0]).parent), "HOME": str(tmp_path)}
    refused = subprocess.run(command, capture_output=True, text=True, env=env)
    assert refused.returncode != 0 and "SECRET_KEY" in refused.stderr + refused.stdout
    env |= {"SECRET_KEY": "x" * 40, "POSTGRES_PASSWORD": "y" * 20}
    accepted = subprocess.run(command, capture_output=True, text=True, env=env)
    assert accepted.returncode == 0, accepted.stderr
