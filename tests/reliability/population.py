"""Databases of their own for the reliability tests, and a project full of raters."""

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

import psycopg
from sqlalchemy.ext.asyncio import create_async_engine

from pickwise.core.db import session_factory
from pickwise.core.embedded_pg import to_libpq_url, to_sqlalchemy_url
from pickwise.core.migrations import upgrade_head
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


def fresh_database(server_url: str, name: str) -> str:
    """Drop and create `name` on the server of `server_url`; returns its libpq URL."""
    with psycopg.connect(to_libpq_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(urlsplit(to_libpq_url(server_url))._replace(path="/" + name))


def migrated_database(server_url: str, name: str) -> str:
    url = fresh_database(server_url, name)
    upgrade_head(to_sqlalchemy_url(url))
    return url


@dataclass(frozen=True)
class Rater:
    id: int
    token: str


@dataclass(frozen=True)
class Population:
    project_id: int
    raters_per_pair: int
    pair_ids: list[int]
    raters: list[Rater]


async def populate(
    database_url: str,
    *,
    raters: int,
    pairs: int,
    raters_per_pair: int,
    lease_seconds: int = 600,
    **settings: object,
) -> Population:
    """One project with `pairs` pairs and `raters` members, each with an API token; other
    project `settings` (e.g. adaptive overlap) as given."""
    engine = create_async_engine(to_sqlalchemy_url(database_url))
    try:
        async with session_factory(engine)() as session, session.begin():
            project = await make_project(
                session, raters_per_pair=raters_per_pair, lease_seconds=lease_seconds, **settings
            )
            made_pairs = await make_pairs(session, project, pairs)
            members = []
            for _ in range(raters):
                user = await make_user(session)
                await add_member(session, project, user)
                headers = await bearer_headers(session, user)
                members.append(Rater(user.id, headers["Authorization"].removeprefix("Bearer ")))
            return Population(project.id, raters_per_pair, [p.id for p in made_pairs], members)
    finally:
        await engine.dispose()
