"""Migration 4f7a2c9e6b15: exclusions move from `project_members.excluded` to
`project_rater_exclusions`, and back on a downgrade, with the explorer's counts following."""

import asyncio

import psycopg
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import create_async_engine

from pickwise.core.db import session_factory
from pickwise.core.embedded_pg import to_libpq_url, to_sqlalchemy_url
from pickwise.core.migrations import alembic_config
from pickwise.projects import service as projects_service
from tests.factories import add_member, exclude, make_pairs, make_project, make_user
from tests.reliability.population import migrated_database
from tests.review.helpers import vote

REVISION = "4f7a2c9e6b15"
SCRATCH = "pickwise_rater_exclusions_migration_test"


def _query(url: str, sql: str) -> list[tuple[object, ...]]:
    with psycopg.connect(to_libpq_url(url)) as conn:
        return list(conn.execute(sql))


def _execute(url: str, sql: str) -> None:
    with psycopg.connect(to_libpq_url(url)) as conn:
        conn.execute(sql)


def _excluded_members(url: str, project_id: int) -> list[tuple[object, ...]]:
    return _query(
        url,
        f"SELECT user_id FROM project_members WHERE project_id = {project_id} AND excluded "
        "ORDER BY user_id",
    )


def _exclusions(url: str, project_id: int) -> list[tuple[object, ...]]:
    return _query(
        url,
        f"SELECT user_id FROM project_rater_exclusions WHERE project_id = {project_id} "
        "ORDER BY user_id",
    )


def _votes(url: str, project_id: int) -> int:
    (row,) = _query(url, f"SELECT sum(votes) FROM pair_summaries WHERE project_id = {project_id}")
    return int(str(row[0]))


async def test_exclusions_survive_a_downgrade_and_upgrade(server_url: str) -> None:
    url = await asyncio.to_thread(migrated_database, server_url, SCRATCH)
    config = alembic_config(to_sqlalchemy_url(url))
    before = ScriptDirectory.from_config(config).get_revision(REVISION).down_revision
    assert isinstance(before, str)
    # At head: four raters vote on two pairs; two members are excluded, and so is a rater
    # removed from the project.
    engine = create_async_engine(to_sqlalchemy_url(url))
    try:
        async with session_factory(engine)() as session, session.begin():
            project = await make_project(session, raters_per_pair=4)
            pairs = await make_pairs(session, project, 2)
            raters = [await make_user(session) for _ in range(4)]
            for rater in raters:
                await add_member(session, project, rater)
                for pair in pairs:
                    await vote(session, pair, rater, "a")
            for rater in raters[1:]:
                await exclude(session, project, rater)
            await projects_service.remove_member(session, project, raters[3].id)
            project_id = project.id
            member_ids = [(raters[1].id,), (raters[2].id,)]
            former_id = (raters[3].id,)
    finally:
        await engine.dispose()
    assert _votes(url, project_id) == 2  # only the first rater's votes count

    await asyncio.to_thread(command.downgrade, config, before)
    assert _excluded_members(url, project_id) == member_ids
    # The former member's exclusion has no place in the older schema: their votes count.
    assert _votes(url, project_id) == 4
    # The older schema's trigger counts a member excluded there.
    _execute(url, f"UPDATE project_members SET excluded = false WHERE user_id = {member_ids[0][0]}")
    assert _votes(url, project_id) == 6

    await asyncio.to_thread(command.upgrade, config, REVISION)
    assert _exclusions(url, project_id) == member_ids[1:]
    assert _votes(url, project_id) == 6
    columns = _query(
        url,
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_name = 'project_members' AND column_name = 'excluded'",
    )
    assert columns == []
    # And the new trigger counts: the former member excluded again.
    _execute(
        url,
        "INSERT INTO project_rater_exclusions (project_id, user_id) "
        f"VALUES ({project_id}, {former_id[0]})",
    )
    assert _votes(url, project_id) == 4
    await asyncio.to_thread(command.upgrade, config, "head")
