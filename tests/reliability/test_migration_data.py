"""Suite 6: migrations keep the data of a populated database.

The database is filled through the app at head (accounts, a project, an imported batch,
judgments, skips, flags, idempotency keys, sessions, invites). Then, for every revision after
the first, a `downgrade -1` / `upgrade +1` round trip must keep every row: the same row counts
in every table, and the same values in every column the older schema also has. (Rows in
tables the revision itself creates, and values in columns it adds, cannot survive its
downgrade; everything else must.) The first revision's downgrade drops the whole schema, so
it is checked on an empty database instead.
"""

import asyncio
import itertools
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from alembic import command
from alembic.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from psycopg import sql
from sqlalchemy import create_engine
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from pickwise.app import create_app
from pickwise.auth import service as auth_service
from pickwise.batches.search_catchup import catch_up
from pickwise.core.db import get_session, get_units, session_factory, unit_of_work
from pickwise.core.embedded_pg import to_libpq_url, to_sqlalchemy_url
from pickwise.core.migrations import alembic_config
from pickwise.models import Base, User
from tests.factories import PASSWORD, bearer_headers, make_user
from tests.reliability.population import fresh_database, migrated_database

TEMPLATE = "pickwise_reliability_migrations"
COPY = "pickwise_reliability_migrations_copy"
EMPTY = "pickwise_reliability_migrations_empty"
# Tables the app fills through the population below; others (newer features) may be empty.
POPULATED_TABLES = {
    "users",
    "api_tokens",
    "user_sessions",
    "login_failures",
    "invites",
    "projects",
    "project_members",
    "batches",
    "prompts",
    "responses",
    "pairs",
    "pair_slots",
    "assignments",
    "judgments",
    "pair_flags",
    "idempotency_keys",
}

# {table: {"rows": count, column: checksum of its values in primary-key order}}
CHECKSUM = "md5(coalesce(string_agg(coalesce({}::text, '<null>'), '|' ORDER BY {}), ''))"
Snapshot = dict[str, dict[str, Any]]


def revisions() -> list[Script]:
    """Every revision, oldest first; the history must be a single line."""
    script = ScriptDirectory.from_config(alembic_config(""))
    ordered = list(reversed(list(script.walk_revisions())))
    for older, newer in itertools.pairwise(ordered):
        assert newer.down_revision == older.revision, "migration history is not a single line"
    return ordered


def later_revisions() -> list[str]:
    return [revision.revision for revision in revisions()[1:]]


def current_revision(url: str) -> str | None:
    engine = create_engine(to_sqlalchemy_url(url))
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def move_to(url: str, target: str) -> None:
    order = [revision.revision for revision in revisions()]
    config = alembic_config(to_sqlalchemy_url(url))
    current = current_revision(url)
    if current is None or order.index(target) > order.index(current):
        command.upgrade(config, target)
    elif order.index(target) < order.index(current):
        command.downgrade(config, target)


def snapshot(url: str) -> Snapshot:
    with psycopg.connect(to_libpq_url(url)) as conn:
        tables = [
            name
            for (name,) in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'alembic_version' ORDER BY tablename"
            )
        ]
        result: Snapshot = {}
        for table in tables:
            columns = [
                name
                for (name,) in conn.execute(
                    "SELECT column_name FROM information_schema.columns "
                    "WHERE table_schema = 'public' AND table_name = %s ORDER BY column_name",
                    (table,),
                )
            ]
            key = [
                name
                for (name,) in conn.execute(
                    "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                    "ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) "
                    "WHERE i.indrelid = %s::regclass AND i.indisprimary ORDER BY a.attnum",
                    (f'public."{table}"',),
                )
            ]
            assert key, f"{table} has no primary key to order its rows by"
            order = sql.SQL(", ").join(sql.Identifier(name) for name in key)
            sums = sql.SQL(", ").join(
                sql.SQL(CHECKSUM).format(sql.Identifier(name), order) for name in columns
            )
            row = conn.execute(
                sql.SQL("SELECT count(*), {} FROM {}").format(sums, sql.Identifier(table))
            ).fetchone()
            assert row is not None
            result[table] = {"rows": row[0], **dict(zip(columns, row[1:], strict=True))}
    return result


# Tables, sequences, indexes, views and types left in the schema (besides Alembic's own).
LEFTOVERS = """
    SELECT c.relkind::text, c.relname::text
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'public' AND c.relname NOT LIKE 'alembic_version%'
    UNION ALL
    SELECT 'type', t.typname::text
    FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
    WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'c') AND t.typrelid = 0
"""


def copy_database(server_url: str, template: str, name: str) -> str:
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return urlunsplit(urlsplit(to_libpq_url(server_url))._replace(path="/" + name))


def kept(before: Snapshot, after: Snapshot, older: Snapshot) -> list[str]:
    """Where `after` lost what `before` had, in the tables and columns `older` also has.
    (A column only `older` has was dropped by the revision, its data moved elsewhere: the
    revision's own test follows it, e.g. tests/core/test_rater_exclusions_migration.py.)"""
    differences = []
    for table, columns in older.items():
        for column in columns:
            if column not in before[table]:
                continue
            if before[table][column] != after[table][column]:
                differences.append(f"{table}.{column}")
    return differences


# -- population through the app ----------------------------------------------------------


def app_on(engine: AsyncEngine) -> FastAPI:
    """The real app; each unit of work commits at its end, like unit_of_work."""
    application = create_app()

    @asynccontextmanager
    async def unit() -> AsyncIterator[AsyncSession]:
        async with session_factory(engine)() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            else:
                await session.commit()

    async def session_for_request() -> AsyncIterator[AsyncSession]:
        async with unit() as session:
            yield session

    application.dependency_overrides[get_session] = session_for_request
    application.dependency_overrides[get_units] = lambda: unit
    return application


def batch_file(prompts: int) -> bytes:
    records: list[dict[str, Any]] = [
        {
            "id": f"q{i}",
            "prompt": f"Question {i}?",
            "responses": [
                {"id": "a", "model": "model-x", "content": f"Answer a to {i}."},
                {"id": "b", "model": "model-y", "content": f"Answer b to {i}."},
            ],
        }
        for i in range(prompts)
    ]
    records.append(
        {
            "id": "check",
            "prompt": "What is 2 + 2?",
            "responses": [
                {"id": "right", "model": "model-x", "content": "4"},
                {"id": "wrong", "model": "model-y", "content": "5"},
            ],
            "gold": {"winner": "right"},
        }
    )
    return "\n".join(json.dumps(record) for record in records).encode()


async def populate_via_app(url: str) -> None:
    engine = create_async_engine(to_sqlalchemy_url(url))
    app = app_on(engine)
    try:
        async with session_factory(engine)() as session, session.begin():
            # The first admin comes from the CLI (`pickwise users create`), not the API.
            admin = await make_user(session, role="admin", password=PASSWORD)
            as_admin = await bearer_headers(session, admin)
        async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as c:

            async def call(
                method: str, name: str, *, headers: dict[str, str], **kwargs: Any
            ) -> Any:
                path_params = kwargs.pop("path", {})
                response = await c.request(
                    method, app.url_path_for(name, **path_params), headers=headers, **kwargs
                )
                assert response.status_code < 400, response.text
                return response.json() if response.content else None

            project = await call(
                "POST",
                "create_project",
                headers=as_admin,
                json={
                    "slug": "migration-data",
                    "name": "Migration data",
                    "raters_per_pair": 2,
                    "criteria": ["helpful"],
                    "gold_rate": 0.3,
                },
            )
            project_id = project["id"]
            await call(
                "POST",
                "import_batch",
                headers={**as_admin, "Content-Type": "application/x-ndjson"},
                path={"project_id": project_id},
                params={"filename": "batch.jsonl"},
                content=batch_file(8),
            )
            raters = []
            for n in range(3):
                raters.append(
                    await call(
                        "POST",
                        "create_user",
                        headers=as_admin,
                        json={
                            "email": f"rater{n}@example.org",
                            "display_name": f"Rater {n}",
                            "password": PASSWORD,
                            "project_ids": [project_id],
                        },
                    )
                )
            await call(
                "POST",
                "create_invite",
                headers=as_admin,
                json={"email": "later@example.org", "project_id": project_id},
            )
            # A web login (a session) and a failed one.
            await c.post("/login", data={"email": "rater0@example.org", "password": PASSWORD})
            await c.post("/login", data={"email": "rater1@example.org", "password": "wrong!"})
            c.cookies.clear()

            for n, rater in enumerate(raters):
                async with session_factory(engine)() as session, session.begin():
                    user = await session.get(User, rater["id"])
                    assert user is not None
                    token, _ = await auth_service.create_api_token(session, user, "script")
                as_rater = {"Authorization": f"Bearer {token}"}
                for step in range(100):
                    shown = await call(
                        "GET", "next_pair", headers=as_rater, path={"project_id": project_id}
                    )
                    if shown["assignment_id"] is None:
                        break
                    once = {**as_rater, "Idempotency-Key": uuid.uuid4().hex}
                    where = {"assignment_id": shown["assignment_id"]}
                    if step == 0 and n == 1:
                        await call(
                            "POST",
                            "skip_pair",
                            headers=once,
                            path=where,
                            json={"reason": "cant_judge"},
                        )
                    elif step == 1 and n == 0:
                        await call(
                            "POST",
                            "flag_pair",
                            headers=once,
                            path=where,
                            json={"reason": "other", "note": "typo in the prompt"},
                        )
                    else:
                        await call(
                            "POST",
                            "submit_judgment",
                            headers=once,
                            path=where,
                            json={
                                "choice": ("left", "right", "tie")[step % 3],
                                "rationale": f"reason {step}",
                                "criteria": {"helpful": "left"},
                            },
                        )
        # What the app's background step does after an import: the data at rest has its
        # search words (a downgrade makes them again, from the content).
        await catch_up(lambda: unit_of_work(engine))
    finally:
        await engine.dispose()


@pytest.fixture(scope="module")
async def populated_template(server_url: str) -> str:
    url = await asyncio.to_thread(migrated_database, server_url, TEMPLATE)
    await populate_via_app(url)
    return url


@pytest.fixture
def populated(server_url: str, populated_template: str) -> str:
    """A fresh copy of the populated database at head, so that a test walking down through
    other revisions cannot hide damage from the test of the revision that did it."""
    return copy_database(server_url, TEMPLATE, COPY)


def test_population_fills_the_core_tables(populated: str) -> None:
    empty = {table for table, found in snapshot(populated).items() if found["rows"] == 0}
    assert not empty & POPULATED_TABLES, f"population left tables empty: {empty}"


def test_upgrade_head_on_populated_database_keeps_every_row(populated: str) -> None:
    before = snapshot(populated)
    command.upgrade(alembic_config(to_sqlalchemy_url(populated)), "head")
    assert current_revision(populated) == revisions()[-1].revision
    assert snapshot(populated) == before


@pytest.mark.parametrize("revision", later_revisions())
def test_downgrade_and_upgrade_of_a_revision_keep_the_data(populated: str, revision: str) -> None:
    move_to(populated, revision)
    before = snapshot(populated)
    command.downgrade(alembic_config(to_sqlalchemy_url(populated)), "-1")
    older = snapshot(populated)
    for table, columns in older.items():
        if table in before:
            assert columns["rows"] == before[table]["rows"], f"{table}: rows lost on downgrade"
    command.upgrade(alembic_config(to_sqlalchemy_url(populated)), "+1")
    assert current_revision(populated) == revision
    after = snapshot(populated)
    assert after.keys() == before.keys()
    assert not kept(before, after, older), "values changed by the round trip"


def test_downgrade_base_and_upgrade_head_on_empty_database(server_url: str) -> None:
    url = fresh_database(server_url, EMPTY)
    config = alembic_config(to_sqlalchemy_url(url))
    command.upgrade(config, "head")
    assert set(snapshot(url)) == set(Base.metadata.tables)
    command.downgrade(config, "base")
    with psycopg.connect(to_libpq_url(url)) as conn:
        leftovers = conn.execute(LEFTOVERS).fetchall()
    assert leftovers == [], f"downgrade base left objects behind: {leftovers}"
    command.upgrade(config, "head")
    assert set(snapshot(url)) == set(Base.metadata.tables)
    assert current_revision(url) == revisions()[-1].revision
