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
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import psycopg
import pytest
from httpx import ASGITransport, AsyncClient
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from pickwise.app import create_app
from pickwise.core.db import get_session, get_units, make_engine, session_factory
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
# Waits in the worker-kill test are on conditions; these bounds only turn a hang into a failure
# (pytest's own timeout, 300 s, is the last resort).
HANG_GUARD = 120.0
RATERS_DEADLINE = 240.0
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


async def app_setting(database_url: str, name: str) -> str:
    """A setting as the app's own connections see it (they could override the server's)."""
    engine = make_engine(to_sqlalchemy_url(database_url))
    try:
        async with engine.connect() as conn:
            return str(await conn.scalar(text(f"SHOW {name}")))
    finally:
        await engine.dispose()


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


async def seconds_until_serving(server: AppServer, rater: Rater) -> tuple[float, str]:
    """Seconds until /readyz and /api/v1/me both answer 200 (inf if never), and the last
    answers seen (to tell an app that never recovered from a database that is not ready)."""
    started = time.monotonic()
    headers = {"Authorization": f"Bearer {rater.token}"}
    last = ""
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30) as client:
        while time.monotonic() - started < RECOVERY_BOUND * 2:
            ready = await client.get("/readyz")
            me = await client.get("/api/v1/me")
            if ready.status_code == me.status_code == 200:
                return time.monotonic() - started, ""
            last = f"/readyz {ready.status_code} {ready.text[:300]}; /me {me.status_code}"
            await asyncio.sleep(0.1)
    return float("inf"), last


async def stop_raters(task: "asyncio.Task[None]") -> None:
    if not task.done():
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def test_postgres_crash_mid_load(cluster: Cluster, run_dir: Path) -> None:
    database_url = await asyncio.to_thread(migrated_database, cluster.url(), "pickwise_crash")
    assert setting(database_url, "synchronous_commit") == "on"
    assert setting(database_url, "fsync") == "on"
    assert await app_setting(database_url, "synchronous_commit") == "on"
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
            recovery, not_serving = await seconds_until_serving(server, probe_rater)
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
    assert recovery <= RECOVERY_BOUND, not_serving
    assert ledger.statuses[503] > 0, "the raters never saw the outage"
    assert acknowledged_before_restart >= 20
    assert not log_errors(server_log).requests, log_errors(server_log).requests[:3]


def bearer(rater: Rater) -> dict[str, str]:
    return {"Authorization": f"Bearer {rater.token}"}


async def lease_on_kept_connection(
    server: AppServer, client: httpx.AsyncClient, project_id: int
) -> tuple[int, int]:
    """Lease a pair on `client`'s kept-alive connection: (assignment id, pid of the worker
    that leased it and holds the connection)."""
    deadline = time.monotonic() + HANG_GUARD
    while (response := await client.get(f"/api/v1/projects/{project_id}/next")).status_code == 503:
        assert time.monotonic() < deadline, "503 on /next for the whole hang guard"
        await asyncio.sleep(0.2)
    assert response.status_code == 200, response.text
    assignment_id: int = response.json()["assignment_id"]
    assert assignment_id is not None, "no pair left to lease"
    _, client_port = response.extensions["network_stream"].get_extra_info("client_addr")
    worker = await asyncio.to_thread(server.worker_serving, client_port)
    assert worker is not None, f"no worker holds the connection from port {client_port}"
    return assignment_id, worker


def held_leases(database_url: str, assignment_ids: list[int]) -> list[tuple[int, bool]]:
    """(assignment id, lease still running) of those assignments that hold their slot."""
    rows = counts(
        database_url,
        """
        SELECT a.id, a.lease_expires_at > now()
        FROM assignments a JOIN pair_slots s ON s.id = a.slot_id
        WHERE a.id = ANY(%s) AND a.status = 'leased'
          AND s.state = 'leased' AND s.assignment_id = a.id
        """,
        assignment_ids,
    )
    return [(int(row[0]), bool(row[1])) for row in rows]


def judgments_stored(database_url: str, population: Population) -> int:
    rows = counts(
        database_url,
        "SELECT count(*) FROM judgments WHERE project_id = %s",
        population.project_id,
    )
    return int(rows[0][0])


async def test_worker_killed_mid_load(cluster: Cluster, run_dir: Path) -> None:
    """SIGKILL to the worker that leased pairs to raters who never come back, while others
    rate: the other worker and the replacement keep serving, the dead worker's leases are
    handed out again once they expire (not before), and every acknowledged judgment is stored
    exactly once, no pair over k.

    Leases expire in real time (the server is another process, so the test clock cannot move
    it): 10 s, the shortest a project allows. Every wait is on a condition in the database or
    the ledger; the bounds are hang guards only."""
    database_url = await asyncio.to_thread(migrated_database, cluster.url(), "pickwise_kill")
    assert setting(database_url, "synchronous_commit") == "on"
    population = await populate(
        database_url, raters=16, pairs=30, raters_per_pair=2, lease_seconds=LEASE_SECONDS
    )
    # Walkers lease a pair just before the kill and never come back; the load raters rate
    # throughout; the late raters start after the kill (in case the kill cut off every
    # load rater, someone must be left to take the expired leases).
    walkers, raters, late = (
        population.raters[:4],
        population.raters[4:12],
        population.raters[12:],
    )
    needed = len(population.pair_ids) * population.raters_per_pair
    ledger = Ledger()
    done, worker_dying = asyncio.Event(), asyncio.Event()

    phases = {"start": time.monotonic()}
    with running_server(database_url, run_dir / "server.log") as server:
        phases["serving"] = time.monotonic()
        kept = [
            httpx.AsyncClient(base_url=server.url, headers=bearer(walker), timeout=60)
            for walker in walkers
        ]
        work = asyncio.create_task(
            run_raters(
                server.url,
                raters,
                population.project_id,
                PATIENT,
                ledger,
                seed=3,
                seconds=RATERS_DEADLINE,
                until_done=done,
                # Raters whose request died with the worker walk away too.
                vanish_when_cut=worker_dying,
            )
        )
        late_work: asyncio.Task[None] | None = None
        try:
            await until(lambda: ledger.acknowledged >= 5, within=HANG_GUARD, what="5 judgments")
            leased = await asyncio.gather(
                *(lease_on_kept_connection(server, c, population.project_id) for c in kept)
            )
            by_worker = Counter(worker for _, worker in leased)
            victim = by_worker.most_common(1)[0][0]
            victims_leases = [assignment for assignment, worker in leased if worker == victim]
            # At the kill the victim's leases exist: leased, each holding its slot.
            held_at_kill = await asyncio.to_thread(held_leases, database_url, victims_leases)
            acknowledged_at_kill = ledger.acknowledged
            phases["kill"] = time.monotonic()
            worker_dying.set()
            os.kill(victim, signal.SIGKILL)
            assert sorted(a for a, _ in held_at_kill) == sorted(victims_leases), held_at_kill
            for client in kept:
                await client.aclose()
            await until(
                lambda: victim not in (pids := server.worker_pids()) and len(pids) == 2,
                within=HANG_GUARD,
                what="the killed worker replaced",
            )
            worker_dying.clear()
            phases["replaced"] = time.monotonic()
            late_work = asyncio.create_task(
                run_raters(
                    server.url,
                    late,
                    population.project_id,
                    PATIENT,
                    ledger,
                    seed=4,
                    seconds=RATERS_DEADLINE,
                    until_done=done,
                )
            )
            await until(
                lambda: judgments_stored(database_url, population) == needed,
                within=HANG_GUARD,
                what="every pair judged k times",
                every=0.5,
            )
            phases["all_judged"] = time.monotonic()
            done.set()
            await asyncio.wait_for(asyncio.gather(work, late_work), timeout=HANG_GUARD)
        finally:
            for task in (work, late_work):
                if task is not None:
                    await stop_raters(task)
            for client in kept:
                await client.aclose()
        server_log = server.log()

    outcome = check(database_url, population, ledger, drained=True)
    walked_away = [assignment for assignment, _ in leased]
    walked = len(walked_away) + len(ledger.vanished)
    extra = {
        "walked_away": walked,
        "victim_leases": len(victims_leases),
        "victim_leases_running_at_kill": sum(running for _, running in held_at_kill),
        "acknowledged_after_kill": ledger.acknowledged - acknowledged_at_kill,
        "server_request_errors": len(log_errors(server_log).requests),
        # Seconds since the test started (populated database): server up, kill, ...
        "phases": {name: round(t - phases["start"], 1) for name, t in phases.items()},
    }
    outcome.figures.save(run_dir / "figures.json", **extra)
    print(f"\nworker kill: {outcome.figures.report()}, {extra}")
    assert not outcome.problems, outcome.problems
    # Serving went on after the kill: at least the walkers' slots were judged afterwards.
    assert ledger.acknowledged - acknowledged_at_kill >= len(walked_away)
    # Each walker's slot was handed to another rater only after the lease expired, and
    # judged by them; the walker's own assignment ended as expired.
    reclaimed = counts(
        database_url,
        """
        SELECT a.id, a.status, b.shown_at >= a.lease_expires_at, b.rater_id <> a.rater_id
        FROM assignments a
        JOIN assignments b ON b.slot_id = a.slot_id AND b.id <> a.id AND b.status = 'submitted'
        JOIN judgments j ON j.assignment_id = b.id AND j.slot_id = a.slot_id
        WHERE a.id = ANY(%s)
        """,
        walked_away,
    )
    assert sorted(row[0] for row in reclaimed) == sorted(walked_away), reclaimed
    assert all(status == "expired" and after and other for _, status, after, other in reclaimed)
    # Nobody holds a lease any more: whatever the killed worker was doing was rolled back or
    # committed whole.
    left = counts(
        database_url,
        "SELECT count(*) FROM pair_slots WHERE project_id = %s AND state <> 'done'",
        population.project_id,
    )
    assert left == [(0,)]
    assert not log_errors(server_log).requests, log_errors(server_log).requests[:3]


@pytest.mark.parametrize("query", ["", "?next=true"])
async def test_a_failed_commit_is_never_acknowledged(cluster: Cluster, query: str) -> None:
    """Postgres dying at COMMIT: the client gets a 503, never a 201 for a lost judgment, and
    the retry with the same Idempotency-Key stores it once (and, asked with the next pair,
    the replay comes with the same lease)."""
    database_url = await asyncio.to_thread(migrated_database, cluster.url(), "pickwise_commit")
    population = await populate(database_url, raters=1, pairs=2, raters_per_pair=1)
    engine = create_async_engine(to_sqlalchemy_url(database_url))
    commit_fails = asyncio.Event()

    @asynccontextmanager
    async def unit() -> AsyncIterator[AsyncSession]:
        # unit_of_work, except that COMMIT may be lost as when the server dies at that moment.
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

    async def session_for_request() -> AsyncIterator[AsyncSession]:
        async with unit() as session:
            yield session

    app = create_app()
    app.dependency_overrides[get_session] = session_for_request
    # The answer routes commit their first unit themselves (`OpenUnit`).
    app.dependency_overrides[get_units] = lambda: unit
    headers = {"Authorization": f"Bearer {population.raters[0].token}"}
    try:
        async with AsyncClient(
            transport=ASGITransport(app=app), base_url="http://test", headers=headers
        ) as client:
            shown = await client.get(
                app.url_path_for("next_pair", project_id=population.project_id)
            )
            assignment_id = shown.json()["assignment_id"]
            submit_url = app.url_path_for("submit_judgment", assignment_id=assignment_id) + query
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
    if query:
        assert stored.json()["next"]["assignment_id"] not in (None, assignment_id)
