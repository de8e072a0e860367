import psycopg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from pickwise.core.migrations import alembic_config
from pickwise.models import Base

SCRATCH = "pickwise_migrations_test"


def _scratch_url(server_url: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{SCRATCH}"')
    from urllib.parse import urlsplit, urlunsplit

    from pickwise.core.embedded_pg import to_sqlalchemy_url

    return to_sqlalchemy_url(urlunsplit(urlsplit(server_url)._replace(path="/" + SCRATCH)))


def _tables(url: str) -> set[str]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.exec_driver_sql(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).scalars()
        names = set(rows)
    engine.dispose()
    return names - {"alembic_version"}


def test_upgrade_downgrade_upgrade_and_models_match(server_url: str) -> None:
    url = _scratch_url(server_url)
    config = alembic_config(url)
    command.upgrade(config, "head")
    assert _tables(url) == set(Base.metadata.tables)
    command.downgrade(config, "base")
    assert _tables(url) == set()
    command.upgrade(config, "head")
    engine = create_engine(url)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, Base.metadata)
    engine.dispose()
    assert differences == [], f"models and migrations disagree: {differences}"
