"""Suite 2: crashes mid-load.

Postgres (a throwaway embedded cluster, so the other tests' server is never touched) is
stopped hard with `pg_ctl stop -m immediate` while raters work, then restarted: requests during
the outage are answered 503 quickly, the app recovers by itself, nothing acknowledged is lost
and retries store nothing twice. An app worker killed with SIGKILL mid-load is replaced, and
the leases of raters who never come back return to the queue once they expire. A COMMIT that
fails is never acknowledged.
"""

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from pickwise.app import create_app
from pickwise.core.db import get_session, session_factory
from pickwise.core.embedded_pg import to_libpq_url, to_sqlalchemy_url
from tests.reliability.app_server import AppServer, log_errors, running_server
from tests.reliability.checks import check, counts
from tests.reliability.cluster import Cluster, throwaway_cluster
from tests.reliability.population import Population, Rater, migrated_database, populate
from tests.reliability.raters import Faults, Ledger, run_raters

# A request while Postgres is down must be answered within this bound: at worst it waits
# pool_timeout (5 s) for a connection and connect_timeout (3 s) to fail, plus scheduling slack
# on a busy machine. Longer is a hang, not slowness.
ANSWER_BOUND = 10.0
# After Postgres is back, the app serves again within this bound without a restart.
RECOVERY_BOUND = 15.0
OUTAGE_SECONDS = 3.0
# Requests that need the database but take no lease (a lease nobody judges would stall the run).
PROBES = (("GET", "/readyz"), ("GET", "/api/v1/me"), ("POST", "/api/v1/assignments/0/judgment"))
LEASE_SECONDS = 10  # the smallest a project allows
# The crash is the fault here: clients keep retrying through it (bounded by the deadline).
PATIENT = Faults(max_lost_attempts=100, backoff=(0.2, 0.5))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as cluster:
        yield cluster


async def until(
    condition: Callable[[], bool], *, within: float, what: str, every: float = 0.1
) -> None:
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within} s: {what}")
        await asyncio.sleep(every)


def setting(database_url: str, name: str) -> str:
    with psycopg.connect(to_libpq_url(database_url)) as conn:
        row = conn.execute(f"SHOW {name}").fetchone()
    assert row is not None
    return str(row[0])


async def probe_outage(server: AppServer, rater: Rater) -> list[tuple[str, int, float]]:
    """(request, status, seconds) of requests sent while Postgres is down; none takes a lease."""
    answers = []
    headers = {"Authorization": f"Bearer {rater.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        deadline = time.monotonic() + OUTAGE_SECONDS
        while time.monotonic() < deadline:
            for method, path in PROBES:
                started = time.monotonic()
                response = await client.request(
                    method, path, json={"choice": "left"}, headers={"Idempotency-Key": "probe"}
                )
                answers.append((path, response.status_code, time.monotonic() - started))
            await asyncio.sleep(0.2)
    return answers


async def seconds_until_serving(server: AppServer, rater: Rater) -> float:
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {rater.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        while time.monotonic() - started < RECOVERY_BOUND * 2:
            ready = await client.get("/readyz")
            me = await client.get("/api/v1/me")
            if ready.status_code == me.status_code == 200:
                return time.monotonic() - started
            await asyncio.sleep(0.1)
    return float("inf")


async def stop_raters(task: "asyncio.Task[None]") -> None:
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_postgres_crash_mid_load(cluster: Cluster, run_dir: Path) -> None:
    database_url = await asyncio.to_thread(migrated_database, cluster.url(), "pickwise_crash")
    assert setting(database_url, "synchronous_commit") == "on"
    assert setting(database_url, "fsync") == "on"
    population = await populate(database_url, raters=31, pairs=30, raters_per_pair=2)
    probe_rater, raters = population.raters[0], population.raters[1:]
    ledger = Ledger()

    with running_server(database_url, run_dir / "server.log") as server:
        work = asyncio.create_task(
            run_raters(
                server.url, raters, population.project_id, PATIENT, ledger, seed=2, seconds=120
            )
        )
        try:
            await until(lambda: ledger.acknowledged >= 20, within=60, what="20 judgments")
            await asyncio.to_thread(cluster.crash)
            during_outage = await probe_outage(server, probe_rater)
            acknowledged_before_restart = ledger.acknowledged
            await asyncio.to_thread(cluster.start)
            recovery = await seconds_until_serving(server, probe_rater)
            await asyncio.wait_for(work, timeout=150)
        finally:
            await stop_raters(work)
            if not cluster.is_running():  # the module's other tests need it
                await asyncio.to_thread(cluster.start)
        server_log = server.log()

    outcome = check(database_url, population, ledger, drained=True)
    slowest_503 = max(ledger.unavailable_seconds + [s for _, _, s in during_outage])
    extra = {
        "recovery_seconds": round(recovery, 2),
        "slowest_503_seconds": round(slowest_503, 2),
        "outage_probes": len(during_outage),
        "server_request_errors": len(log_errors(server_log).requests),
    }
    outcome.figures.save(run_dir / "figures.json", **extra)
    print(f"\ncrash: {outcome.figures.report()}, {extra}")
    assert not outcome.problems, outcome.problems
    assert during_outage and all(status == 503 for _, status, _ in during_outage), during_outage
    assert slowest_503 <= ANSWER_BOUND
    assert recovery <= RECOVERY_BOUND
    assert ledger.statuses[503] > 0, "the raters never saw the outage"
    assert acknowledged_before_restart >= 20
    assert not log_errors(server_log).requests, log_errors(server_log).requests[:3]


async def lease_and_walk_away(server: AppServer, rater: Rater, project_id: int) -> int:
    """A rater who takes a pair and never comes back; returns the assignment id."""
    headers = {"Authorization": f"Bearer {rater.token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        response = await client.get(f"/api/v1/projects/{project_id}/next")
    assert response.status_code == 200, response.text
    assignment_id: int = response.json()["assignment_id"]
    return assignment_id


def judgments_stored(database_url: str, population: Population) -> int:
    rows = counts(
        database_url,
        "SELECT count(*) FROM judgments WHERE project_id = %s",
        population.project_id,
    )
    return int(rows[0][0])


# Heavy and timing-sensitive on a loaded 2-core machine: runs with `make soak`.
@pytest.mark.slow
async def test_worker_killed_mid_load(cluster: Cluster, run_dir: Path) -> None:
    database_url = await asyncio.to_thread(migrated_database, cluster.url(), "pickwise_kill")
    population = await populate(
        database_url, raters=30, pairs=30, raters_per_pair=2, lease_seconds=LEASE_SECONDS
    )
    walkers, raters = population.raters[:4], population.raters[4:]
    needed = len(population.pair_ids) * population.raters_per_pair
    ledger = Ledger()
    done, worker_dying = asyncio.Event(), asyncio.Event()

    with running_server(database_url, run_dir / "server.log") as server:
        walked_away = [
            await lease_and_walk_away(server, rater, population.project_id) for rater in walkers
        ]
        work = asyncio.create_task(
            run_raters(
                server.url,
                raters,
                population.project_id,
                PATIENT,
                ledger,
                seed=3,
                seconds=120,
                until_done=done,
                # Raters whose request died with the worker walk away too.
                vanish_when_cut=worker_dying,
            )
        )
        try:
            await until(lambda: ledger.acknowledged >= 10, within=60, what="10 judgments")
            victim = server.worker_pids()[0]
            worker_dying.set()
            os.kill(victim, signal.SIGKILL)
            await until(
                lambda: victim not in (pids := server.worker_pids()) and len(pids) == 2,
                within=60,
                what="the killed worker replaced",
            )
            worker_dying.clear()
            await until(
                lambda: judgments_stored(database_url, population) == needed,
                within=LEASE_SECONDS + 60,
                what="every pair judged k times",
                every=0.5,
            )
            done.set()
            await asyncio.wait_for(work, timeout=30)
        finally:
            await stop_raters(work)

    outcome = check(database_url, population, ledger, drained=True)
    walked = len(walked_away) + len(ledger.vanished)
    outcome.figures.save(run_dir / "figures.json", walked_away=walked)
    print(f"\nworker kill: {outcome.figures.report()}, walked_away={walked}")
    assert not outcome.problems, outcome.problems
    # The walkers' leases expired and their slots were judged by others, after the expiry.
    reclaimed = counts(
        database_url,
        """
        SELECT a.status, j.submitted_at >= a.lease_expires_at
        FROM assignments a
        JOIN judgments j ON j.pair_id = a.pair_id AND j.rater_id <> a.rater_id
        WHERE a.id = ANY(%s) AND j.slot_id = a.slot_id
        """,
        walked_away,
    )
    assert len(reclaimed) == len(walked_away), reclaimed
    assert all(status == "expired" and after_expiry for status, after_expiry in reclaimed)
    # Nobody holds a lease any more: whatever the killed worker was doing was rolled back or
    # committed whole.
    left = counts(
        database_url,
        "SELECT count(*) FROM pair_slots WHERE project_id = %s AND state <> 'done'",
        population.project_id,
    )
    assert left == [(0,)]


async def test_a_failed_commit_is_never_acknowledged(cluster: Cluster) -> None:
    """Postgres dying at COMMIT: the client gets a 503, never a 201 for a lost judgment, and
    the retry with the same Idempotency-Key stores it once."""
    database_url = await asyncio.to_thread(migrated_database, cluster.url(), "pickwise_commit")
    population = await populate(database_url, raters=1, pairs=1, raters_per_pair=1)
    engine = create_async_engine(to_sqlalchemy_url(database_url))
    commit_fails = asyncio.Event()

    async def session_for_request() -> AsyncIterator[AsyncSession]:
        # get_session, except that COMMIT may be lost as when the server dies at that moment.
        async with session_factory(engine)() as session:
            try:
                yield session
            except BaseException:
                await session.rollback()
                raise
            if commit_fails.is_set():
                await session.rollback()
                lost = psycopg.OperationalError("server closed the connection unexpectedly")
                raise OperationalError("COMMIT", None, lost)
            await session.commit()

    app = create_app()
    app.dependency_overrides[get_session] = session_for_request
    headers = {"Authorization": f"Bearer {population.raters[0].token}"}
    try:
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://test", headers=headers
        ) as client:
            shown = await client.get(
                app.url_path_for("next_pair", project_id=population.project_id)
            )
            assignment_id = shown.json()["assignment_id"]
            submit_url = app.url_path_for("submit_judgment", assignment_id=assignment_id)
            once = {"Idempotency-Key": "the-only-submit"}

            commit_fails.set()
            failed = await client.post(submit_url, json={"choice": "left"}, headers=once)
            assert failed.status_code == 503, failed.text
            assert failed.headers["retry-after"]
            assert judgments_stored(database_url, population) == 0

            commit_fails.clear()
            stored = await client.post(submit_url, json={"choice": "left"}, headers=once)
            replayed = await client.post(submit_url, json={"choice": "left"}, headers=once)
    finally:
        await engine.dispose()
    assert stored.status_code == replayed.status_code == 201, stored.text
    assert stored.json() == replayed.json()
    assert judgments_stored(database_url, population) == 1
