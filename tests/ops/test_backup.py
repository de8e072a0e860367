"""`pickwise backup` and `pickwise restore` round-trip a populated database."""

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from typer.testing import CliRunner

from pickwise.assignments.service import next_lease
from pickwise.cli.main import app as cli
from pickwise.core.db import session_factory
from pickwise.core.embedded_pg import to_sqlalchemy_url
from pickwise.core.migrations import upgrade_head
from pickwise.judgments.schemas import JudgmentIn
from pickwise.judgments.service import submit
from tests.conftest import reread_settings
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user

CHECKSUMMED = ("users", "pairs", "pair_slots", "assignments", "judgments")


def _scratch_database(server_url: str, name: str) -> str:
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return to_sqlalchemy_url(urlunsplit(urlsplit(server_url)._replace(path="/" + name)))


@pytest.fixture
async def source_and_target(server_url: str) -> AsyncIterator[tuple[str, str]]:
    names = [f"pickwise_backup_{role}_{os.getpid()}" for role in ("source", "target")]
    urls = [_scratch_database(server_url, name) for name in names]
    yield urls[0], urls[1]
    with psycopg.connect(server_url, autocommit=True) as conn:
        for name in names:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def populate(engine: AsyncEngine) -> None:
    async with session_factory(engine)() as session, session.begin():
        project = await make_project(session, raters_per_pair=2)
        await make_pairs(session, project, 6)
        for _ in range(3):
            rater = await make_user(session)
            await add_member(session, project, rater)
            await bearer_headers(session, rater)
            while (assignment := await next_lease(session, project, rater)) is not None:
                body = JudgmentIn(choice="left", rationale="clearer")
                await submit(session, assignment.assignment_id, rater, body)


async def snapshot(url: str) -> dict[str, object]:
    """Row counts of every table, and a checksum of the rating tables' contents."""
    engine = create_async_engine(url)
    state: dict[str, object] = {}
    async with engine.connect() as conn:
        tables = (
            await conn.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"))
        ).scalars()
        for table in sorted(tables):
            state[table] = await conn.scalar(text(f'SELECT count(*) FROM "{table}"'))
        for table in CHECKSUMMED:
            state[f"{table} md5"] = await conn.scalar(
                text(f"SELECT md5(string_agg(t::text, '|' ORDER BY t.id)) FROM {table} t")
            )
    await engine.dispose()
    return state


def run_cli(url: str, *args: str, input: str | None = None) -> tuple[int, str]:
    """The command as its own process would run it: settings read from this environment."""
    reread_settings()
    try:
        result = CliRunner().invoke(cli, list(args), input=input, env={"DATABASE_URL": url})
    finally:
        reread_settings()
    return result.exit_code, result.output


async def test_backup_then_restore_into_a_fresh_database(
    source_and_target: tuple[str, str], tmp_path: Path
) -> None:
    source, target = source_and_target
    await asyncio.to_thread(upgrade_head, source)
    engine = create_async_engine(source)
    await populate(engine)
    await engine.dispose()
    before = await snapshot(source)
    assert before["judgments"] == 12 and before["alembic_version"] == 1
    dump = tmp_path / "pickwise.dump"

    code, output = run_cli(source, "backup", str(dump))
    assert code == 0, output
    assert dump.stat().st_size > 0 and not dump.with_name("pickwise.dump.partial").exists()

    code, output = run_cli(target, "restore", str(dump), "--yes")
    assert code == 0, output
    assert await snapshot(target) == before


async def test_restore_replaces_changed_data_and_asks_first(
    source_and_target: tuple[str, str], tmp_path: Path
) -> None:
    source, _ = source_and_target
    await asyncio.to_thread(upgrade_head, source)
    engine = create_async_engine(source)
    await populate(engine)
    before = await snapshot(source)
    dump = tmp_path / "pickwise.dump"
    assert run_cli(source, "backup", str(dump))[0] == 0
    async with engine.begin() as conn:
        await conn.execute(text("DELETE FROM judgments WHERE id % 2 = 0"))
    await engine.dispose()

    code, _ = run_cli(source, "restore", str(dump), input="n\n")
    assert code != 0
    assert (await snapshot(source))["judgments"] == 6

    code, output = run_cli(source, "restore", str(dump), "--yes")
    assert code == 0, output
    assert await snapshot(source) == before


def test_failed_backup_leaves_no_file(tmp_path: Path) -> None:
    dump = tmp_path / "pickwise.dump"
    code, output = run_cli("postgresql://nobody:pw@127.0.0.1:9/none", "backup", str(dump))
    assert code == 1 and "pg_dump failed" in output
    assert list(tmp_path.iterdir()) == []
