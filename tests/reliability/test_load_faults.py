"""Suite 1: hundreds of raters against a real server while requests time out and connections
drop. Afterwards every acknowledged judgment is stored exactly once, every submit a client gave
up on is stored once or not at all, no pair holds more than k judgments, and no 5xx was
answered but a deliberate 503.

`pickwise serve --workers 2` runs as a subprocess on its own database; the raters reach it
through a loopback proxy that cuts connections. The default size runs in `make test`; the soak
(`make soak`) is the same test, bigger and with more faults.
"""

import asyncio
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import pytest

from tests.reliability.app_server import log_errors, running_server
from tests.reliability.checks import check, counts
from tests.reliability.population import Population, migrated_database, populate
from tests.reliability.proxy import FaultyProxy
from tests.reliability.raters import Faults, Ledger, run_raters

DATABASE = "pickwise_reliability_load"


@dataclass(frozen=True)
class Load:
    raters: int
    pairs: int
    raters_per_pair: int
    seconds: float
    faults: Faults
    drop_request_rate: float
    drop_answer_rate: float
    # Adaptive overlap (2 to 5 raters, the default rule) instead of k per pair.
    adaptive: bool = False


DEFAULT = Load(
    raters=200,
    pairs=80,
    raters_per_pair=3,
    # A bound against hangs, not a target: the run takes ~30 s on two shared cores.
    seconds=120,
    faults=Faults(short_timeout_rate=0.08, give_up_rate=0.05),
    drop_request_rate=0.02,
    drop_answer_rate=0.04,
)
# The same faults on an adaptive project: a pair's last votes often meet, the decision races
# the other submits, and raters keep asking until only walk-aways' leases are left.
ADAPTIVE = Load(
    raters=120,
    pairs=40,
    raters_per_pair=3,
    seconds=120,
    faults=Faults(short_timeout_rate=0.08, give_up_rate=0.05),
    drop_request_rate=0.02,
    drop_answer_rate=0.04,
    adaptive=True,
)
SOAK = Load(
    raters=600,
    pairs=1_000,
    raters_per_pair=3,
    seconds=900,
    faults=Faults(short_timeout_rate=0.15, give_up_rate=0.08, timeout=60.0),
    drop_request_rate=0.05,
    drop_answer_rate=0.08,
)


async def run_load(server_url: str, run_dir: Path, load: Load, *, seed: int) -> None:
    database_url = await asyncio.to_thread(migrated_database, server_url, DATABASE)
    population = await populate(
        database_url,
        raters=load.raters,
        pairs=load.pairs,
        raters_per_pair=load.raters_per_pair,
        overlap_mode="adaptive" if load.adaptive else "fixed",
    )
    ledger = Ledger()
    # Adaptive: a vote may open a slot after the other raters found nothing left, so raters
    # keep asking until only slots leased by raters who walked away remain.
    done = asyncio.Event() if load.adaptive else None
    started = time.monotonic()
    with running_server(database_url, run_dir / "server.log") as server:
        proxy = FaultyProxy(
            server.port,
            drop_request_rate=load.drop_request_rate,
            drop_answer_rate=load.drop_answer_rate,
            seed=seed,
        )
        base_url = await proxy.start()
        try:
            raters = run_raters(
                base_url,
                population.raters,
                population.project_id,
                load.faults,
                ledger,
                seed=seed,
                seconds=load.seconds,
                until_done=done,
            )
            if done is None:
                await asyncio.wait_for(raters, timeout=load.seconds + 30)
            else:
                watcher = asyncio.create_task(
                    set_when_only_walk_aways_hold_work(database_url, population, ledger, done)
                )
                try:
                    await asyncio.wait_for(raters, timeout=load.seconds + 30)
                finally:
                    watcher.cancel()
        finally:
            await proxy.close()
        server_errors = log_errors(server.log())

    outcome = check(database_url, population, ledger, drained=True)
    figures = outcome.figures
    outcome.figures.save(
        run_dir / "figures.json",
        seconds=round(time.monotonic() - started, 1),
        proxy=asdict(proxy.stats),
        slowest_answer_seconds=round(ledger.slowest_answer, 2),
        slowest_503_seconds=round(max(ledger.unavailable_seconds, default=0), 2),
        server_request_errors=len(server_errors.requests),
        server_background_errors=len(server_errors.background),
    )
    print(f"\nload: {figures.report()}, proxy: {proxy.stats}")
    for line in server_errors.background[:3]:
        print(f"background error in the server log: {line[:500]}")
    assert not outcome.problems, outcome.problems
    assert not server_errors.requests, server_errors.requests[:3]
    # The faults really happened, in each of their kinds.
    assert proxy.stats.answers_dropped > 0
    assert proxy.stats.requests_dropped > 0
    assert figures.short_timeouts > 0
    assert figures.given_up > 0
    assert figures.acknowledged_after_retries > 0


async def set_when_only_walk_aways_hold_work(
    database_url: str, population: Population, ledger: Ledger, done: asyncio.Event
) -> None:
    """Sets ``done`` once every slot not judged is leased to a rater who walked away."""
    query = (
        "SELECT a.rater_id FROM pair_slots s "
        "LEFT JOIN assignments a ON a.id = s.assignment_id AND a.status = 'leased' "
        "WHERE s.project_id = %s AND s.state <> 'done'"
    )
    while True:
        holders = await asyncio.to_thread(counts, database_url, query, population.project_id)
        if all(rater_id in ledger.walked_away for (rater_id,) in holders):
            done.set()
            return
        await asyncio.sleep(0.5)


async def test_raters_with_timeouts_and_dropped_connections(server_url: str, run_dir: Path) -> None:
    await run_load(server_url, run_dir, DEFAULT, seed=1)


async def test_adaptive_overlap_with_timeouts_and_dropped_connections(
    server_url: str, run_dir: Path
) -> None:
    await run_load(server_url, run_dir, ADAPTIVE, seed=2)


@pytest.mark.slow
@pytest.mark.timeout(1_800)
@pytest.mark.skipif(os.environ.get("PICKWISE_SOAK") != "1", reason="soak: PICKWISE_SOAK=1")
async def test_soak_raters_with_timeouts_and_dropped_connections(
    server_url: str, run_dir: Path
) -> None:
    await run_load(server_url, run_dir, SOAK, seed=7)
