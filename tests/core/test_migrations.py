import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from pickwise.core.migrations import alembic_config
from pickwise.models import Base

SCRATCH = "pickwise_migrations_test"
FROM_MODELS = "pickwise_models_test"


def _scratch_url(server_url: str, name: str = SCRATCH) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    from urllib.parse import urlsplit, urlunsplit

    from pickwise.core.embedded_pg import to_sqlalchemy_url

    return to_sqlalchemy_url(urlunsplit(urlsplit(server_url)._replace(path="/" + name)))


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


# What the database itself says it enforces, in its own normalised spelling: two schemas
# that print the same here accept and refuse the same rows. (Alembic's version table is its
# own, not part of the schema.)
_CATALOG = {
    "constraints": """
        SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)
        FROM pg_constraint
        WHERE connamespace = 'public'::regnamespace
          AND conrelid::regclass::text <> 'alembic_version'
    """,
    "indexes": """
        SELECT tablename, indexname, indexdef FROM pg_indexes
        WHERE schemaname = 'public' AND tablename <> 'alembic_version'
    """,
    "columns": """
        SELECT table_name, column_name,
               concat_ws(' ', data_type, character_maximum_length, is_nullable, column_default)
        FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> 'alembic_version'
    """,
}
Catalog = dict[str, dict[tuple[str, str], str]]


def _catalog(url: str) -> Catalog:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = {
            kind: {(table, name): text for table, name, text in conn.exec_driver_sql(sql)}
            for kind, sql in _CATALOG.items()
        }
    engine.dispose()
    return found


@pytest.fixture(scope="module")
def both_schemas(server_url: str) -> tuple[Catalog, Catalog]:
    """The catalog of a database built by `alembic upgrade head`, and of one built by
    `metadata.create_all` from the models."""
    migrated = _scratch_url(server_url, SCRATCH)
    command.upgrade(alembic_config(migrated), "head")
    from_models = _scratch_url(server_url, FROM_MODELS)
    engine = create_engine(from_models)
    Base.metadata.create_all(engine)
    engine.dispose()
    return _catalog(migrated), _catalog(from_models)


@pytest.mark.parametrize("kind", sorted(_CATALOG))
def test_migrations_build_the_schema_the_models_describe(
    both_schemas: tuple[Catalog, Catalog], kind: str
) -> None:
    """Constraints (CHECKs with their allowed values included), indexes (partial ones with
    their WHERE) and columns are the same either way: the comparison `alembic check` makes
    does not look at CHECK constraints."""
    by_migrations, by_models = (schema[kind] for schema in both_schemas)
    assert by_migrations, f"no {kind} found: the catalog query is wrong"
    differences = {
        key: (by_migrations.get(key), by_models.get(key))
        for key in by_migrations.keys() | by_models.keys()
        if by_migrations.get(key) != by_models.get(key)
    }
    assert differences == {}, f"{kind}: (migrations, models) differ: {differences}"
