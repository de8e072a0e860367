"""The app keeps no state of its own: two separate servers on one database drain a project
with exactly k judgments per pair while every request goes to either at random.

One server is plain uvicorn; the other is the container's command (gunicorn with
deploy/gunicorn.conf.py and two uvicorn workers, metrics shared through
PROMETHEUS_MULTIPROC_DIR), so three app processes take part.
"""

import asyncio
import json
import random
import sys
from collections import Counter
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import select

from pickwise.core.db import get_engine, session_factory
from pickwise.models import Judgment
from tests.conftest import ROOT
from tests.factories import (
    PASSWORD,
    add_member,
    bearer_headers,
    make_pairs,
    make_project,
    make_user,
)
from tests.ops.conftest import BIN, Server, free_port, server_env, start, stop, wait_ready

RATERS = 12
PAIRS = 20
K = 3


async def rate_until_done(
    urls: list[str], headers: dict[str, str], project_id: int, seed: int
) -> list[int]:
    """One rater; each request goes to a server picked at random."""
    pick = random.Random(seed)
    acknowledged = []
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        while True:
            answer = await client.get(f"{pick.choice(urls)}/api/v1/projects/{project_id}/next")
            assert answer.status_code == 200, answer.text
            body = answer.json()
            if body["assignment_id"] is None:
                return acknowledged
            stored = await client.post(
                f"{pick.choice(urls)}/api/v1/assignments/{body['assignment_id']}/judgment",
                json={"choice": pick.choice(["left", "right"])},
            )
            assert stored.status_code == 201, stored.text
            acknowledged.append(stored.json()["judgment_id"])


def counter_value(server: Server, name: str) -> float:
    families = text_string_to_metric_families(httpx.get(server.url + "/metrics").text)
    return sum(
        sample.value
        for family in families
        if family.name == name
        for sample in family.samples
        if sample.name == name + "_total"
    )


def start_uvicorn(tmp_path: Path, database_url: str) -> Server:
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "pickwise.app:create_app", "--factory"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    env = server_env(DATABASE_URL=database_url, ENVIRONMENT="test", LOG_LEVEL="WARNING")
    return start(command, port, tmp_path / "uvicorn.log", env)


def start_gunicorn(tmp_path: Path, database_url: str) -> Server:
    port = free_port()
    command = [str(BIN / "gunicorn"), "--config", str(ROOT / "deploy" / "gunicorn.conf.py")]
    command += ["--bind", f"127.0.0.1:{port}", "pickwise.app:create_app()"]
    env = server_env(
        DATABASE_URL=database_url,
        ENVIRONMENT="test",
        WEB_CONCURRENCY="2",
        PROMETHEUS_MULTIPROC_DIR=str(tmp_path / "prometheus"),
        LOG_LEVEL="INFO",
    )
    return start(command, port, tmp_path / "gunicorn.log", env)


async def test_two_servers_drain_a_project_with_exactly_k(
    committed: None, servers: list[Server], tmp_path: Path, database_url: str
) -> None:
    servers += [start_uvicorn(tmp_path, database_url), start_gunicorn(tmp_path, database_url)]

    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session, raters_per_pair=K)
        pairs = await make_pairs(session, project, PAIRS)
        raters = []
        for _ in range(RATERS):
            rater = await make_user(session)
            await add_member(session, project, rater)
            raters.append(await bearer_headers(session, rater))
        web_user = await make_user(session, password=PASSWORD)
        web_email, project_id = web_user.email, project.id
    for server in servers:
        wait_ready(server)
    first, second = servers
    urls = [server.url for server in servers]

    results = await asyncio.gather(
        *(rate_until_done(urls, headers, project_id, seed) for seed, headers in enumerate(raters))
    )

    acknowledged = [judgment_id for result in results for judgment_id in result]
    async with session_factory(get_engine())() as session:
        rows = (
            await session.execute(select(Judgment.id, Judgment.pair_id, Judgment.rater_id))
        ).all()
    assert sorted(row.id for row in rows) == sorted(acknowledged), "lost or extra judgments"
    assert Counter(row.pair_id for row in rows) == {pair.id: K for pair in pairs}
    raters_per_pair: dict[int, set[int]] = {}
    for row in rows:
        raters_per_pair.setdefault(row.pair_id, set()).add(row.rater_id)
    assert all(len(distinct) == K for distinct in raters_per_pair.values())
    # Each server stored some of them, and their counters add up to the total: gunicorn's
    # /metrics, answered by either worker, sums both workers.
    stored = [counter_value(server, "pickwise_judgments_stored") for server in servers]
    assert all(count > 0 for count in stored)
    assert sum(stored) == PAIRS * K

    # A login session made by one server is honoured by the other.
    async with httpx.AsyncClient(timeout=30) as client:
        logged_in = await client.post(
            first.url + "/login", data={"email": web_email, "password": PASSWORD}
        )
        assert logged_in.status_code == 303, logged_in.text
        home = await client.get(second.url + "/")
    assert home.status_code == 200

    # Gunicorn and the app log JSON lines, requests with their id.
    assert stop(second) == 0
    entries = [json.loads(line) for line in second.output().splitlines() if line.strip()]
    assert any(entry["logger"] == "gunicorn.error" for entry in entries)
    assert any(entry.get("route") == "/" and entry.get("request_id") for entry in entries)
