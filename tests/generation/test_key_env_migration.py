"""Migration 8e5f3a6c1d27: api_key_env must end in _API_KEY; older rows that do not are
cleared and their endpoints deactivated (the rest of the row is kept)."""

import psycopg
import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError

from pickwise.core.embedded_pg import to_sqlalchemy_url
from pickwise.core.migrations import alembic_config

REVISION = "8e5f3a6c1d27"
SCRATCH = "pickwise_key_env_migration_test"


def _scratch_url(server_url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    return to_sqlalchemy_url(urlunsplit(urlsplit(server_url)._replace(path="/" + SCRATCH)))


def test_bad_key_variables_are_cleared_and_their_endpoints_deactivated(server_url: str) -> None:
    url = _scratch_url(server_url)
    config = alembic_config(url)
    before = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    command.upgrade(config, before)
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            # No project needed for this check: skip the foreign-key triggers.
            conn.execute(text("SET LOCAL session_replication_role = replica"))
            for name, variable in (
                ("good", "OPENAI_API_KEY"),
                ("secret", "SECRET_KEY"),
                ("db", "DATABASE_URL"),
                ("none", None),
            ):
                conn.execute(
                    text(
                        "INSERT INTO generation_endpoints "
                        "(project_id, name, base_url, model, api_key_env, is_active) "
                        "VALUES (1, :name, 'http://x/v1', 'm', :variable, true)"
                    ),
                    {"name": name, "variable": variable},
                )
        command.upgrade(config, REVISION)
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT name, api_key_env, is_active FROM generation_endpoints ORDER BY name")
            ).all()
        assert [tuple(row) for row in rows] == [
            ("db", None, False),
            ("good", "OPENAI_API_KEY", True),
            ("none", None, True),
            ("secret", None, False),
        ]
        with pytest.raises(IntegrityError, match="api_key_env_format"), engine.begin() as conn:
            conn.execute(text("UPDATE generation_endpoints SET api_key_env = 'SECRET_KEY'"))
        command.downgrade(config, before)
        command.upgrade(config, "head")
    finally:
        engine.dispose()
