"""A DATABASE_URL written in `.env` (and not in the environment) is the database that
`pickwise db upgrade` migrates and `pickwise serve` serves, and serve says so in its log."""

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from pickwise.core.embedded_pg import to_sqlalchemy_url
from tests.ops.conftest import BIN, Server, free_port, server_env, start, stop, wait_ready

SCRATCH = f"pickwise_dotenv_{os.getpid()}"


@pytest.fixture
def scratch_url(server_url: str) -> Iterator[str]:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    yield to_sqlalchemy_url(urlunsplit(urlsplit(server_url)._replace(path="/" + SCRATCH)))
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')


def test_commands_and_serve_use_the_dotenv_database(
    scratch_url: str, tmp_path: Path, servers: list[Server]
) -> None:
    site = tmp_path / "site"
    site.mkdir()
    unused = tmp_path / "embedded-data"
    (site / ".env").write_text(f"DATABASE_URL={scratch_url}\nPICKWISE_DATA_DIR={unused}\n")
    env = server_env(LOG_LEVEL="INFO", ENVIRONMENT="test")
    for name in ("DATABASE_URL", "READ_DATABASE_URL", "PICKWISE_DATA_DIR"):
        env.pop(name, None)

    upgrade = subprocess.run(
        [str(BIN / "pickwise"), "db", "upgrade"], cwd=site, env=env, capture_output=True, text=True
    )
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr

    port = free_port()
    command = [str(BIN / "pickwise"), "serve", "--no-migrate", "--port", str(port)]
    server = start(command, port, tmp_path / "serve.log", env, cwd=site)
    servers.append(server)
    # Ready means: the database answers and is at the head migration, which only the
    # .env database is (db upgrade above).
    wait_ready(server, "/readyz")
    assert stop(server) == 0, server.output()

    logged = [json.loads(line) for line in server.output().splitlines() if '"database"' in line]
    assert len(logged) == 1, server.output()
    assert logged[0]["embedded_database"] is False
    shown = logged[0]["database"]
    assert f"/{SCRATCH}" in shown and shown.endswith(" (DATABASE_URL)"), shown
    assert not unused.exists(), "an embedded Postgres was started despite DATABASE_URL in .env"
