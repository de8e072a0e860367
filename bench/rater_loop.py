"""Rater loop: simulated raters over HTTP against `pickwise serve`, next pair + submit.

By default each judgment is one request, `POST …/judgment?next=true`, whose answer carries
the next pair (as the rating page and the Python client do); `PICKWISE_BENCH_REQUESTS=2`
(`python -m bench rater-loop --requests-per-judgment 2`) sends `GET …/next` and then the
plain `POST …/judgment`, as before, for an A/B of the two.

The page loop drives the rating page as a browser does: a login cookie, the choice form
POSTed with the CSRF token and idempotency key parsed from the last page, and the next pair
read from the answer (one request per judgment; every so many judgments the answer is the
rater's summary, after which the rater opens the rating page again). Its app CPU per
judgment is set beside the API loop's at the same number of raters, on the same server.

The limits, measured on the same server in the same run:
- the same work issued directly with psycopg (no HTTP, no ORM): claim a slot with the app's
  own FOR UPDATE SKIP LOCKED query, insert the assignment, lease the slot and read the pair's
  text (one transaction), then mark the slot done, insert the judgment and close the
  assignment (a second transaction, as a rater submits later);
- pgbench's built-in tpcb-like transaction on a scratch database.
Each configuration gets its own project of the same size, so no run eats another's pairs.
"""

import asyncio
import html
import math
import os
import random
import re
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import psycopg

from bench import datagen, overlap_decision
from bench.app_server import serve
from bench.http_client import KeepAliveClient
from bench.measure import CpuMeter, latency_ms, postmaster_pid
from bench.postgres import Server, run_tool
from bench.report import BenchResult, DetailTable, Target

NAME = "rater-loop"
REQUESTS_ENV = "PICKWISE_BENCH_REQUESTS"
K = 3
MODELS = ("model-a", "model-b")
NEXT_P99_TARGET_MS = 50.0  # back to back: every rater always has a call in flight
PACED_NEXT_P99_TARGET_MS = 20.0  # raters thinking between judgments, as people do
# Loops/s against the raw loop, by the server's workers (issue 20): one worker shares the
# machine's two cores with Postgres and the raters, so its line is lower.
RATIO_TARGETS = {1: 0.35}
RATIO_TARGET = 0.5  # two workers and more
PAGE_CPU_TARGET = 1.5  # the page loop's app CPU per judgment, against the API loop's
SESSION_COOKIE = "pickwise_session"


@dataclass(frozen=True)
class Size:
    pairs: int
    concurrency: tuple[int, ...]
    seconds: float  # time cap per run
    max_loops: int  # per rater per run
    workers: tuple[int, ...]
    pgbench_scale: int
    warmup_seconds: float
    think_seconds: float  # mean think time between loops, in the paced run
    settle_seconds: float  # paced run: loops started earlier are not recorded
    # Paced run's time cap (after the settle): 16 raters thinking ~1 s make ~16 loops a
    # second, and the p99 of n samples is the (n/100)th slowest, so it takes ~60 s for the
    # p99 to rest on ten samples rather than two.
    paced_seconds: float
    overlap_pairs: int  # per project in the adaptive-beside-fixed runs
    overlap_rounds: int  # rounds of two runs: fixed then adaptive, then the other way round
    overlap_seconds: float  # time cap per run there
    overlap_decisions: int  # the decision measured on its own: transactions per case


SIZES = {
    "full": Size(
        100_000, (1, 16, 64), 15.0, 50_000, (1, 2), 10, 2.0, 1.0, 3.0, 66.0, 20_000, 4, 15.0, 5_000
    ),
    "quick": Size(
        3_000, (1, 16, 64), 2.0, 2_000, (1, 2), 1, 0.5, 0.25, 0.5, 4.0, 3_000, 4, 5.0, 1_000
    ),
    "smoke": Size(200, (4,), 0.5, 3, (1,), 1, 0.0, 0.0, 0.0, 0.5, 200, 1, 0.5, 20),
}
# `--paced-only`: only the paced runs (each server's and the raw limit's), for the paced
# next-pair latency alone; written apart from the full results.
PACED_ONLY_ENV = "PICKWISE_BENCH_PACED_ONLY"
# The adaptive project beside the fixed one: 2 to 5 raters, the default rule. The simulated
# raters always pick the answer shown left, which is A or B at random: the first two votes
# disagree on half the pairs, so decisions open slots often (a costly case).
ADAPTIVE = {"overlap_mode": "adaptive", "overlap_min": 2, "overlap_max": 5}
OVERLAP_CPU_TARGET = 1.10
OVERLAP_DECISION_SHARE = 0.10


@dataclass
class RunStats:
    loops: int = 0
    errors: int = 0
    no_work: int = 0
    first: list[float] = field(default_factory=list)  # next pair / claim
    second: list[float] = field(default_factory=list)  # submit
    wall: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    # The errors by what answered: "GET next 503" → count.
    error_statuses: dict[str, int] = field(default_factory=dict)

    def error(self, what: str, status: int) -> None:
        self.errors += 1
        key = f"{what} {status}"
        self.error_statuses[key] = self.error_statuses.get(key, 0) + 1

    def record(self, started: float, fetched: float, done: float, record_after: float) -> None:
        """One loop's two calls, unless it started in the warm-up."""
        if started >= record_after:
            self.first.append(fetched - started)
            self.second.append(done - fetched)
            self.loops += 1

    def record_one(self, started: float, done: float, record_after: float) -> None:
        """One loop of one request (submit + next pair), unless it started in the warm-up."""
        if started >= record_after:
            self.first.append(done - started)
            self.loops += 1

    @property
    def rate(self) -> float:
        return self.loops / self.wall if self.wall > 0 else 0.0

    @property
    def judgments(self) -> list[float]:
        """Each loop's whole judgment: both calls (the raw loop's claim and submit, back to
        back), or its one request."""
        if not self.second:
            return self.first
        return [first + second for first, second in zip(self.first, self.second, strict=True)]

    def summary(self) -> dict[str, Any]:
        return {
            "loops": self.loops,
            "loops_per_s": self.rate,
            "errors": self.errors,
            "error_statuses": self.error_statuses,
            "raters_without_work": self.no_work,
            "wall_s": self.wall,
            "first_ms": latency_ms(self.first),
            "second_ms": latency_ms(self.second),
            "judgment_ms": latency_ms(self.judgments),
            "cpu_s": self.cpu,
        }


class Pace:
    """Think time between loops: exponential with mean `seconds`, seeded per rater, and a
    random start, so raters do not move in lockstep (a burst of 16 at once is not 16 people)."""

    def __init__(
        self,
        seconds: float,
        seed: int,
        record_after: float = 0.0,
        arrive: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        self.seconds = seconds
        self.rng = random.Random(seed)
        # Loops started before this moment (perf_counter) are a warm-up and not recorded.
        self.record_after = record_after
        # What the rater does on arriving, after its random start (opening its connection).
        self.arrive = arrive

    async def start(self) -> None:
        if self.seconds:
            await asyncio.sleep(self.rng.uniform(0, self.seconds))
        if self.arrive is not None:
            await self.arrive()

    async def think(self) -> None:
        if self.seconds:
            await asyncio.sleep(self.rng.expovariate(1 / self.seconds))


# --- pickwise over HTTP -----------------------------------------------------------------


def requests_per_judgment() -> int:
    value = os.environ.get(REQUESTS_ENV, "1")
    if value not in ("1", "2"):
        raise ValueError(f"{REQUESTS_ENV}={value!r}: 1 (submit with ?next=true) or 2")
    return int(value)


async def _http_rater(
    client: KeepAliveClient,
    project_id: int,
    deadline: float,
    max_loops: int,
    pace: Pace,
    stats: RunStats,
) -> None:
    """Two requests per judgment: GET …/next, then POST …/judgment."""
    clock = time.perf_counter
    await pace.start()
    for _ in range(max_loops):
        if clock() >= deadline:
            return
        started = clock()
        response = await client.get(f"/api/v1/projects/{project_id}/next")
        fetched = clock()
        if response.status_code != 200:
            stats.error("GET next", response.status_code)
            continue
        assignment_id = response.json()["assignment_id"]
        if assignment_id is None:
            stats.no_work += 1
            return
        submitted = await client.post(
            f"/api/v1/assignments/{assignment_id}/judgment", {"choice": "left"}
        )
        done = clock()
        if submitted.status_code != 201:
            stats.error("POST judgment", submitted.status_code)
            continue
        stats.record(started, fetched, done, pace.record_after)
        await pace.think()


# The loop's work in hand when none is left: "no work left" came instead of a pair.
NO_WORK: Any = object()


async def _one_request_loop(
    first: Callable[[], Awaitable[Any]],
    answer: Callable[[Any], Awaitable[tuple[bool, Any]]],
    deadline: float,
    max_loops: int,
    pace: Pace,
    stats: RunStats,
) -> None:
    """One request per judgment: `answer(work)` sends a judgment on the work in hand (a pair,
    a page's form) and returns (stored, the next work, which came with the answer). The first
    work, and one after an error, comes from `first()` (None: an error, which both count in
    `stats`), outside the loops counted."""
    clock = time.perf_counter
    await pace.start()
    work: Any = None
    for _ in range(max_loops):
        if clock() >= deadline:
            return
        if work is None:
            work = await first()  # an error is counted by `first`
            if work is None:
                continue
        if work is NO_WORK:
            stats.no_work += 1
            return
        started = clock()
        stored, work = await answer(work)
        done = clock()
        if not stored:  # counted by `answer`
            continue
        if work is None:  # stored, but no next pair came with it: ask for one
            stats.errors += 1
        stats.record_one(started, done, pace.record_after)
        await pace.think()


def _pair_or_end(pair: dict[str, Any] | None) -> Any:
    if pair is None:
        return None
    return NO_WORK if pair["assignment_id"] is None else pair


async def _chained_rater(
    client: KeepAliveClient,
    project_id: int,
    deadline: float,
    max_loops: int,
    pace: Pace,
    stats: RunStats,
    *,
    keyed: bool = False,
) -> None:
    """One request per judgment: POST …/judgment?next=true answers with the next pair. The
    first pair (and one after an error) comes from GET …/next. `keyed`: each POST carries an
    Idempotency-Key, as pickwise.client sends it."""

    async def first() -> Any:
        response = await client.get(f"/api/v1/projects/{project_id}/next")
        if response.status_code != 200:
            stats.error("GET next", response.status_code)
            return None
        return _pair_or_end(response.json())

    async def answer(pair: dict[str, Any]) -> tuple[bool, Any]:
        headers = {"Idempotency-Key": str(uuid.uuid4())} if keyed else None
        submitted = await client.post(
            f"/api/v1/assignments/{pair['assignment_id']}/judgment?next=true",
            {"choice": "left"},
            headers,
        )
        if submitted.status_code != 201:
            stats.error("POST judgment?next", submitted.status_code)
            return False, None
        return True, _pair_or_end(submitted.json()["next"])

    await _one_request_loop(first, answer, deadline, max_loops, pace, stats)


CHOICE_FORM = re.compile(r'<form\b[^>]*\bid="choice-form"[^>]*>(.*?)</form>', re.S)
FORM_ACTION = re.compile(r'\baction="([^"]*)"')
HIDDEN_FIELD = re.compile(r'<input type="hidden" name="([^"]+)" value="([^"]*)">')
SUMMARY_MARK = 'id="summary-heading"'  # the milestone's summary page (rate/summary.html)


def choice_form(page: str) -> tuple[str, dict[str, str]] | None:
    """(action, hidden fields: CSRF token, idempotency key) of a rating page's choice form;
    None when the page has none (no work left)."""
    found = CHOICE_FORM.search(page)
    if found is None:
        return None
    opening = page[found.start() : found.start(1)]
    action = FORM_ACTION.search(opening)
    if action is None:
        raise ValueError("the choice form has no action")
    fields = {name: html.unescape(value) for name, value in HIDDEN_FIELD.findall(found[1])}
    return html.unescape(action[1]), fields


async def _page_rater(
    client: KeepAliveClient,
    project_id: int,
    deadline: float,
    max_loops: int,
    pace: Pace,
    stats: RunStats,
) -> None:
    """The rating page as a browser drives it: POST the choice form of the last page, whose
    answer is the next pair's page. The first page (and one after an error) comes from
    GET /rate/{project}."""
    page_url = f"/rate/{project_id}"

    async def first() -> Any:
        reply = await client.get(page_url)
        if reply.status_code != 200:
            stats.error("GET page", reply.status_code)
            return None
        return choice_form(reply.text) or NO_WORK

    async def answer(form: tuple[str, dict[str, str]]) -> tuple[bool, Any]:
        action, fields = form
        reply = await client.post_form(action, {**fields, "choice": "left"})
        # The summary every so many judgments, the choice's answer itself (a redirect to it
        # before i31c): the rater reads it, then goes on rating.
        redirected = reply.status_code == 303 and reply.location is not None
        milestone = redirected or (reply.status_code == 200 and SUMMARY_MARK in reply.text)
        if redirected:
            await client.get(str(reply.location))
        if milestone:
            reply = await client.get(page_url)
        # The answer says "Saved." (after the summary, a cookie this client does not keep did).
        if reply.status_code != 200 or not (milestone or "Saved." in reply.text):
            stats.error("POST choice form", reply.status_code)
            return False, None
        return True, choice_form(reply.text) or NO_WORK

    await _one_request_loop(first, answer, deadline, max_loops, pace, stats)


async def http_run(
    base_url: str,
    tokens: list[str],
    project_id: int,
    seconds: float,
    max_loops: int,
    think_seconds: float = 0.0,
    settle_seconds: float = 0.0,
    cookies: list[str] | None = None,
    *,
    keyed: bool = False,
) -> RunStats:
    """Each rater is its own client with one keep-alive connection, like a browser tab: over
    the API with `tokens` (`keyed`: with an Idempotency-Key on each answer), or on the rating
    page with login `cookies`."""
    stats = RunStats()
    rater: Callable[..., Awaitable[None]]
    if cookies is not None:
        headers = [{"Cookie": f"{SESSION_COOKIE}={cookie}"} for cookie in cookies]
        rater = _page_rater
    else:
        headers = [{"Authorization": f"Bearer {token}"} for token in tokens]
        one_request = requests_per_judgment() == 1
        rater = partial(_chained_rater, keyed=keyed) if one_request else _http_rater
    clients = [KeepAliveClient(base_url, headers=each) for each in headers]
    try:
        # Connected before a rater's first loop, so that no loop pays for TCP setup. Back to
        # back, all at once before the run; paced, each rater connects when it arrives (after
        # its random start), as people's browsers do. Sixteen connections opened in the same
        # millisecond went mostly to one of two server workers (the first to wake accepts all
        # that wait: 11-14 of 16, against 4-12 when they come one by one), so the "2 workers"
        # paced run had most raters on one worker (docs/benchmarks.md, "i31b").
        paced = think_seconds > 0
        if not paced:
            await asyncio.gather(*(client.get("/healthz") for client in clients))
        started = time.perf_counter()
        await asyncio.gather(
            *(
                rater(
                    client,
                    project_id,
                    started + settle_seconds + seconds,
                    max_loops,
                    Pace(
                        think_seconds,
                        seed,
                        started + settle_seconds,
                        arrive=partial(client.get, "/healthz") if paced else None,
                    ),
                    stats,
                )
                for seed, client in enumerate(clients)
            )
        )
        stats.wall = time.perf_counter() - started - settle_seconds
    finally:
        for client in clients:
            await client.aclose()
    return stats


# --- the same work straight through psycopg ---------------------------------------------


def _chosen_slot_sql() -> str:
    """The app's own choice of slot (SQLAlchemy :name parameters → psycopg %(name)s): the
    first available slot in queue order, of another prompt than the rater's last one."""
    from pickwise.assignments.repository import CHOSEN_SLOT

    return re.sub(r"(?<!:):(\w+)", r"%(\1)s", CHOSEN_SLOT)


def raw_statements() -> dict[str, str]:
    return {
        "claim": f"WITH {_chosen_slot_sql()} SELECT id, pair_id FROM slot",
        "assign": """
            INSERT INTO assignments (project_id, pair_id, rater_id, slot_id, status, left_side,
                                     is_gold, shown_at, lease_expires_at)
            VALUES (%(project_id)s, %(pair_id)s, %(rater_id)s, %(slot_id)s, 'leased', 'a',
                    false, %(now)s, %(now)s + interval '600 seconds')
            RETURNING id, lease_expires_at
        """,
        "lease": """
            UPDATE pair_slots SET state = 'leased', assignment_id = %(assignment_id)s,
                                  lease_expires_at = %(expires)s
            WHERE id = %(slot_id)s
        """,
        "content": """
            SELECT p.system, p.turns, ra.content, rb.content
            FROM pairs pr
            JOIN prompts p ON p.id = pr.prompt_id
            JOIN responses ra ON ra.id = pr.response_a_id
            JOIN responses rb ON rb.id = pr.response_b_id
            WHERE pr.id = %(pair_id)s
        """,
        "done": """
            UPDATE pair_slots SET state = 'done', lease_expires_at = NULL
            WHERE id = %(slot_id)s AND assignment_id = %(assignment_id)s AND state = 'leased'
        """,
        "judge": """
            INSERT INTO judgments (project_id, pair_id, assignment_id, rater_id, slot_id, is_gold,
                                   choice, criteria, left_side, shown_at, submitted_at)
            VALUES (%(project_id)s, %(pair_id)s, %(assignment_id)s, %(rater_id)s, %(slot_id)s,
                    false, 'a', '{}', 'a', %(now)s, greatest(now(), %(now)s))
        """,
        "close": """
            UPDATE assignments SET status = 'submitted', completed_at = now()
            WHERE id = %(assignment_id)s
        """,
    }


async def _raw_rater(
    conn: psycopg.AsyncConnection[Any],
    rater_id: int,
    project_id: int,
    deadline: float,
    max_loops: int,
    pace: Pace,
    stats: RunStats,
    sql: dict[str, str],
) -> None:
    clock = time.perf_counter
    await pace.start()
    for _ in range(max_loops):
        if clock() >= deadline:
            return
        started = clock()
        params: dict[str, Any] = {
            "project_id": project_id,
            "rater_id": rater_id,
            "now": datetime.now(UTC),
        }
        async with conn.transaction():
            row = await (await conn.execute(sql["claim"], params)).fetchone()
            if row is None:
                stats.no_work += 1
                return
            params["slot_id"], params["pair_id"] = row
            assigned = await (await conn.execute(sql["assign"], params)).fetchone()
            assert assigned is not None
            params["assignment_id"], params["expires"] = assigned
            await conn.execute(sql["lease"], params)
            await (await conn.execute(sql["content"], params)).fetchone()
        fetched = clock()
        async with conn.transaction():
            marked = await conn.execute(sql["done"], params)
            if marked.rowcount != 1:
                stats.errors += 1
                continue
            await conn.execute(sql["judge"], params)
            await conn.execute(sql["close"], params)
        done = clock()
        stats.record(started, fetched, done, pace.record_after)
        await pace.think()


# No prepared statements: a prepared slot query may switch to a generic plan
# that ignores which project it is asked about, and then it scans every project's slots.
async def raw_run(
    url: str,
    rater_ids: list[int],
    project_id: int,
    seconds: float,
    max_loops: int,
    think_seconds: float = 0.0,
    settle_seconds: float = 0.0,
) -> RunStats:
    stats = RunStats()
    sql = raw_statements()
    # Statements prepared as psycopg does by default (from a statement's fifth run), as the
    # app's are: unprepared, the claim is planned again each time, which costs more than it
    # takes to run and grows with the judgments made (docs/benchmarks.md, the raw limit).
    connections = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in rater_ids]
    try:
        started = time.perf_counter()
        await asyncio.gather(
            *(
                _raw_rater(
                    conn,
                    rater,
                    project_id,
                    started + settle_seconds + seconds,
                    max_loops,
                    Pace(think_seconds, seed, started + settle_seconds),
                    stats,
                    sql,
                )
                for seed, (conn, rater) in enumerate(zip(connections, rater_ids, strict=True))
            )
        )
        stats.wall = time.perf_counter() - started - settle_seconds
    finally:
        for conn in connections:
            await conn.close()
    return stats


# --- pgbench ----------------------------------------------------------------------------

_TPS = re.compile(r"tps = ([\d.]+) \(without initial connection time\)")
_LATENCY = re.compile(r"latency average = ([\d.]+) ms")


def pgbench_run(url: str, clients: int, seconds: float, threads: int) -> dict[str, float]:
    out = run_tool(
        "pgbench",
        "-n",
        "-c",
        str(clients),
        "-j",
        str(min(clients, threads)),
        "-T",
        str(max(round(seconds), 1)),
        url,
        timeout=seconds + 120,
    )
    tps = _TPS.search(out)
    latency = _LATENCY.search(out)
    return {
        "tps": float(tps.group(1)) if tps else 0.0,
        "latency_avg_ms": float(latency.group(1)) if latency else 0.0,
    }


# --- the benchmark ----------------------------------------------------------------------


def _vacuum(url: str, tables: tuple[str, ...] = ("pair_slots", "assignments", "judgments")) -> None:
    """Between runs, as autovacuum would: each run starts from clean slot indexes."""
    with psycopg.connect(url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"VACUUM ANALYZE {table}")


def _load(
    url: str, size: Size, label: str, raters: int, seed: int, **settings: Any
) -> datagen.Setup:
    """A project of `size.pairs` pairs (or `pairs`), k = 3, or adaptive with its minimum of
    slots per pair when `settings` say so."""
    pairs = settings.pop("pairs", size.pairs)
    setup = datagen.make_project(
        url, slug=f"rater-{label}", raters=raters, raters_per_pair=K, seed=seed, **settings
    )
    pool = datagen.TextPool(seed=seed, mean_words=80)
    with psycopg.connect(url) as conn:
        datagen.fast_load(conn)
        corpus = datagen.write_corpus(
            conn,
            setup,
            datagen.CorpusSpec(prompts=pairs, responses_per_prompt=2, models=MODELS, seed=seed),
            pool,
        )
        datagen.write_open_slots(conn, setup, corpus, settings.get("overlap_min", K))
    return setup


@dataclass
class Runs:
    """Saturated runs per configuration ("1w", "2w", "raw") and raters; paced runs."""

    saturated: dict[str, dict[int, RunStats]] = field(default_factory=dict)
    paced: dict[str, RunStats] = field(default_factory=dict)
    page: dict[str, RunStats] = field(default_factory=dict)  # the rating page's loop
    pgbench: dict[int, dict[str, float]] = field(default_factory=dict)


def _measured(meter: CpuMeter, work: Callable[[], RunStats]) -> RunStats:
    before = meter.sample()
    stats = work()
    # Let the postmaster reap the run's closed connections: their CPU then shows in its
    # children's time instead of falling out of the tree.
    time.sleep(0.3)
    stats.cpu = CpuMeter.spent(before, meter.sample())
    return stats


def _over_http(
    base_url: str, setup: datagen.Setup, size: Size, clients: int, **options: float
) -> RunStats:
    think = options.get("think", 0.0)
    seconds = options.get("seconds", size.paced_seconds if think else size.seconds)
    settle = size.settle_seconds if think else 0.0
    tokens = setup.rater_tokens[:clients]
    cookies = setup.rater_cookies[:clients] if options.get("pages") else None
    return asyncio.run(
        http_run(
            base_url, tokens, setup.project_id, seconds, size.max_loops, think, settle, cookies
        )
    )


def _direct(
    url: str, setup: datagen.Setup, size: Size, clients: int, think: float = 0.0
) -> RunStats:
    raters = setup.rater_ids[:clients]
    settle, seconds = (size.settle_seconds, size.paced_seconds) if think else (0.0, size.seconds)
    return asyncio.run(
        raw_run(url, raters, setup.project_id, seconds, size.max_loops, think, settle)
    )


def paced_only() -> bool:
    return os.environ.get(PACED_ONLY_ENV, "") == "1"


def run(server: Server, size_name: str, workdir: Path | None = None) -> BenchResult:
    size = SIZES[size_name]
    started = time.perf_counter()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="pickwise-bench-rater-"))
    paced_raters = 16 if 16 in size.concurrency else size.concurrency[-1]
    only_paced = paced_only()
    result = BenchResult(
        name=NAME,
        size=f"{size_name}-paced" if only_paced else size_name,
        params={
            "paced_only": only_paced,
            "paced_seconds": size.paced_seconds,
            "pairs_per_project": size.pairs,
            "k": K,
            "concurrency": list(size.concurrency),
            "workers": list(size.workers),
            "seconds_per_run": size.seconds,
            "max_loops_per_rater": size.max_loops,
            "paced_raters": paced_raters,
            "think_seconds": size.think_seconds,
            "settle_seconds": size.settle_seconds,
            "pgbench_scale": size.pgbench_scale,
            "requests_per_judgment": requests_per_judgment(),
            "overlap_pairs_per_project": size.overlap_pairs,
            "overlap_rounds": size.overlap_rounds,
            "overlap_seconds_per_run": size.overlap_seconds,
        },
        server=server.describe(),
    )
    raters = max(size.concurrency)
    configurations = [f"{workers}w" for workers in size.workers] + ["raw"]
    # One database per configuration, loaded alike: the slot query's plan depends on what
    # else the tables hold, so each configuration starts from the same state.
    urls = {label: server.create_database(f"rater_{label}") for label in configurations}
    setups = {label: _load(urls[label], size, label, raters, seed=0) for label in configurations}
    for url in urls.values():
        datagen.finish_load(url)
    pg_pid = postmaster_pid(urls["raw"])
    runs = Runs()

    for workers in size.workers:
        label = f"{workers}w"
        setup = setups[label]
        runs.saturated[label] = {}
        url = urls[label]
        with serve(url, workers=workers, log=workdir / f"serve-{label}.log") as app:
            meter = CpuMeter({"app": app.pid, "postgres": pg_pid})
            if size.warmup_seconds:
                _over_http(app.base_url, setup, size, 4, seconds=size.warmup_seconds)
            for clients in () if only_paced else size.concurrency:
                _vacuum(url)
                runs.saturated[label][clients] = _measured(
                    meter, partial(_over_http, app.base_url, setup, size, clients)
                )
            _vacuum(url)
            runs.paced[label] = _measured(
                meter,
                partial(
                    _over_http, app.base_url, setup, size, paced_raters, think=size.think_seconds
                ),
            )
            if only_paced:
                continue
            # The page gets the warm-up the API loop got before its runs: a worker's first
            # pages build what it keeps for every later one (docs/benchmarks.md, "i26a").
            if size.warmup_seconds:
                _over_http(app.base_url, setup, size, 4, seconds=size.warmup_seconds, pages=True)
            _vacuum(url)
            runs.page[label] = _measured(
                meter, partial(_over_http, app.base_url, setup, size, paced_raters, pages=True)
            )

    raw, url = setups["raw"], urls["raw"]
    raw_meter = CpuMeter({"postgres": pg_pid})
    if size.warmup_seconds:
        asyncio.run(
            raw_run(url, raw.rater_ids[:4], raw.project_id, size.warmup_seconds, size.max_loops)
        )
    runs.saturated["raw"] = {}
    for clients in () if only_paced else size.concurrency:
        _vacuum(url)
        runs.saturated["raw"][clients] = _measured(
            raw_meter, partial(_direct, url, raw, size, clients)
        )
    _vacuum(url)
    runs.paced["raw"] = _measured(
        raw_meter, partial(_direct, url, raw, size, paced_raters, size.think_seconds)
    )
    if only_paced:
        _report_paced(result, size, runs, paced_raters)
        result.seconds = time.perf_counter() - started
        return result

    scratch = server.create_database("pgbench", migrate=False)
    run_tool("pgbench", "-i", "-q", "-s", str(size.pgbench_scale), scratch, timeout=900)
    _vacuum(scratch, ("pgbench_accounts", "pgbench_branches", "pgbench_tellers"))
    runs.pgbench = {
        clients: pgbench_run(scratch, clients, size.seconds, threads=os.cpu_count() or 2)
        for clients in size.concurrency
    }

    _report(result, size, runs, paced_raters)
    _overlap_beside_fixed(server, size, paced_raters, workdir, result)
    result.seconds = time.perf_counter() - started
    return result


# --- adaptive overlap beside fixed k ----------------------------------------------------


def _overlap_beside_fixed(
    server: Server, size: Size, raters: int, workdir: Path, result: BenchResult
) -> None:
    """One server, one database, two projects loaded alike: k = 3, and adaptive 2..5. Runs
    alternate (fixed, adaptive, adaptive, fixed, ...) so that both meet the same machine, and
    neither always goes first; the figure is the CPU per loop (client + app + Postgres) of all
    adaptive runs against all fixed ones."""
    url = server.create_database("rater_overlap")
    fixed = _load(url, size, "fixed", raters, seed=0, pairs=size.overlap_pairs)
    adaptive = _load(url, size, "adaptive", raters, seed=1, pairs=size.overlap_pairs, **ADAPTIVE)
    datagen.finish_load(url)
    load_before = os.getloadavg()
    by_policy: dict[str, list[RunStats]] = {"fixed": [], "adaptive": []}
    with serve(url, workers=1, log=workdir / "serve-overlap.log") as app:
        meter = CpuMeter({"app": app.pid, "postgres": postmaster_pid(url)})
        if size.warmup_seconds:
            _over_http(app.base_url, fixed, size, 4, seconds=size.warmup_seconds)
        pair = [("fixed", fixed), ("adaptive", adaptive)]
        for round_no in range(size.overlap_rounds):
            for policy, setup in pair if round_no % 2 == 0 else pair[::-1]:
                _vacuum(url)
                work = partial(
                    _over_http, app.base_url, setup, size, raters, seconds=size.overlap_seconds
                )
                by_policy[policy].append(_measured(meter, work))
    decision = overlap_decision.measure(
        url, adaptive.project_id, size.overlap_decisions, postmaster_pid(url)
    )
    load_after = os.getloadavg()
    cpu = {policy: _pooled_cpu_ms(runs) for policy, runs in by_policy.items()}
    if decision is not None:
        _report_decision(result, decision, cpu["fixed"])
    result.compare(
        f"CPU per loop, adaptive overlap 2..5 beside fixed k = 3, 1 worker, {raters} raters",
        "ms",
        cpu["adaptive"],
        cpu["fixed"],
        "fixed k = 3",
        Target("ratio_at_most", OVERLAP_CPU_TARGET),
    )
    rows = []
    for policy, runs in by_policy.items():
        for number, stats in enumerate(runs, start=1):
            parts = _cpu_ms_per_loop(stats)
            first, second = latency_ms(stats.first), latency_ms(stats.second)
            rows.append(
                [
                    policy,
                    number,
                    stats.loops,
                    stats.rate,
                    first["p50"],
                    second["p50"],
                    second["p99"],
                    parts.get("client"),
                    parts.get("app"),
                    parts.get("postgres"),
                    _own_cpu_ms(stats),
                    stats.errors,
                ]
            )
    result.details.append(
        DetailTable(
            "adaptive overlap beside fixed k = 3 (one server, alternating runs; CPU ms per loop)",
            [
                "project",
                "run",
                "loops",
                "loops/s",
                "next p50",
                "submit p50",
                "submit p99",
                "client",
                "app",
                "postgres",
                "all",
                "errors",
            ],
            rows,
        )
    )
    votes = _votes_per_pair(url, adaptive.project_id)
    result.notes.append(
        "Adaptive overlap beside fixed k = 3: the same raters (always the answer shown left, "
        "so A or B at random) on two projects of the same server, runs alternating. "
        f"Load average (1, 5, 15 min) {_load_text(load_before)} before, "
        f"{_load_text(load_after)} after. Settled adaptive pairs by votes: {votes}."
    )
    result.raw["overlap"] = {
        policy: [stats.summary() for stats in runs] for policy, runs in by_policy.items()
    }
    result.raw["overlap_load_average"] = {"before": load_before, "after": load_after}


def _report_decision(
    result: BenchResult, decision: overlap_decision.DecisionCost, fixed_loop_ms: float
) -> None:
    result.compare(
        "CPU of one overlap decision that opens a slot (app + Postgres, measured apart)",
        "ms",
        decision.one_more_ms,
        fixed_loop_ms,
        "CPU per loop, fixed k = 3",
        Target("ratio_at_most", OVERLAP_DECISION_SHARE),
    )
    result.notes.append(
        f"The decision alone ({decision.decisions} rolled-back transactions per case, over "
        f"{decision.pairs[0]} settled and {decision.pairs[1]} split pairs): "
        f"{decision.settled_ms:.3f} ms of CPU when the pair settles, "
        f"{decision.one_more_ms:.3f} ms when a slot opens, "
        f"beyond the {decision.baseline_ms:.3f} ms of the transaction that locks the pair."
    )
    result.raw["overlap_decision"] = {
        "settled_ms": decision.settled_ms,
        "one_more_ms": decision.one_more_ms,
        "baseline_ms": decision.baseline_ms,
        "decisions": decision.decisions,
        "pairs": list(decision.pairs),
    }


def _pooled_cpu_ms(runs: list[RunStats]) -> float:
    """CPU per loop over several runs: all their CPU over all their loops."""
    loops = sum(stats.loops for stats in runs)
    spent = sum(_own_cpu_ms(stats) * stats.loops for stats in runs)
    return spent / loops if loops else 0.0


def _load_text(load: tuple[float, float, float]) -> str:
    return " / ".join(f"{value:.2f}" for value in load)


def _votes_per_pair(url: str, project_id: int) -> dict[int, int]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            """
            SELECT done, count(*) FROM (
                SELECT pair_id, count(*) FILTER (WHERE state = 'done') AS done,
                       bool_and(state = 'done') AS settled
                FROM pair_slots WHERE project_id = %s GROUP BY pair_id
            ) pairs WHERE settled AND done > 0 GROUP BY done ORDER BY done
            """,
            (project_id,),
        ).fetchall()
    return {int(votes): int(pairs) for votes, pairs in rows}


def _plural(workers: int) -> str:
    return f"{workers} worker{'s' if workers > 1 else ''}"


def _cpu_ms_per_loop(stats: RunStats) -> dict[str, float]:
    loops = max(stats.loops, 1)
    return {
        part: seconds * 1000 / loops
        for part, seconds in stats.cpu.items()
        if part not in ("wall", "idle")
    }


def _own_cpu_ms(stats: RunStats) -> float:
    """CPU per loop of everything the loop needs: client, app (if any), Postgres."""
    cpu = _cpu_ms_per_loop(stats)
    return sum(value for part, value in cpu.items() if part != "other")


def _report(result: BenchResult, size: Size, runs: Runs, paced_raters: int) -> None:
    raw = runs.saturated["raw"]
    rows: list[list[Any]] = []
    cpu_rows: list[list[Any]] = []
    for workers in size.workers:
        label = f"{workers}w"
        for clients in size.concurrency:
            app, limit = runs.saturated[label][clients], raw[clients]
            result.compare(
                f"loops/s, {_plural(workers)}, {clients} raters",
                "loops/s",
                app.rate,
                limit.rate,
                "raw psycopg",
                Target("ratio_at_least", RATIO_TARGETS.get(workers, RATIO_TARGET)),
            )
            if clients == paced_raters:
                how = f"{_plural(workers)}, {clients} raters back to back"
                _compare_p99(result, how, app, limit, NEXT_P99_TARGET_MS)
    _compare_paced(result, size, runs, paced_raters)
    for workers in size.workers:
        clients = paced_raters
        app, limit = runs.saturated[f"{workers}w"][clients], raw[clients]
        result.compare(
            f"CPU per loop (client + app + Postgres), {_plural(workers)}, {clients} raters",
            "ms",
            _own_cpu_ms(app),
            _own_cpu_ms(limit),
            "raw: client + Postgres",
        )
    api_loop = "API loop" if requests_per_judgment() == 1 else "API loop, 2 requests"
    for workers in size.workers:
        label = f"{workers}w"
        result.compare(
            f"app CPU per judgment, rating page, {_plural(workers)}, {paced_raters} raters",
            "ms",
            _cpu_ms_per_loop(runs.page[label]).get("app"),
            _cpu_ms_per_loop(runs.saturated[label][paced_raters]).get("app"),
            api_loop,
            Target("ratio_at_most", PAGE_CPU_TARGET),
        )

    labels = [f"{workers}w" for workers in size.workers] + ["raw"]
    for label in labels:
        for clients in size.concurrency:
            stats = runs.saturated[label][clients]
            first, second = latency_ms(stats.first), latency_ms(stats.second)
            tps = runs.pgbench[clients]["tps"]
            raw_rate = raw[clients].rate
            rows.append(
                [
                    label,
                    clients,
                    stats.loops,
                    stats.rate,
                    stats.rate / raw_rate if raw_rate else None,
                    tps,
                    stats.rate / tps if tps else None,
                    first["p50"],
                    first["p99"],
                    second["p50"],
                    second["p99"],
                    stats.errors,
                ]
            )
            cpu = _cpu_ms_per_loop(stats)
            cpu_rows.append(
                [
                    label,
                    clients,
                    cpu.get("client"),
                    cpu.get("app"),
                    cpu.get("postgres"),
                    cpu.get("other"),
                    _busy_share(stats),
                ]
            )
        paced = runs.paced[label]
        first, second = latency_ms(paced.first), latency_ms(paced.second)
        rows.append(
            [
                f"{label} paced",
                paced_raters,
                paced.loops,
                paced.rate,
                None,
                None,
                None,
                first["p50"],
                first["p99"],
                second["p50"],
                second["p99"],
                paced.errors,
            ]
        )
        page = runs.page.get(label)
        if page is not None:
            first = latency_ms(page.first)
            rows.append(
                [
                    f"{label} page",
                    paced_raters,
                    page.loops,
                    page.rate,
                    page.rate / raw[paced_raters].rate if raw[paced_raters].rate else None,
                    None,
                    None,
                    first["p50"],
                    first["p99"],
                    None,
                    None,
                    page.errors,
                ]
            )
            cpu = _cpu_ms_per_loop(page)
            cpu_rows.append(
                [
                    f"{label} page",
                    paced_raters,
                    cpu.get("client"),
                    cpu.get("app"),
                    cpu.get("postgres"),
                    cpu.get("other"),
                    _busy_share(page),
                ]
            )
    result.details.append(
        DetailTable(
            "runs (1w/2w = pickwise serve workers; raw = psycopg; page = the rating page's "
            "form, back to back; latencies in ms; for raw, next = the claim transaction, "
            "submit = the judgment transaction; with one request per judgment, next = POST "
            "…/judgment?next=true (page: the form's POST, answered with the next pair) and "
            "submit is empty)",
            [
                "run",
                "raters",
                "loops",
                "loops/s",
                "of raw",
                "pgbench tps",
                "loops/tps",
                "next p50",
                "next p99",
                "submit p50",
                "submit p99",
                "errors",
            ],
            rows,
        )
    )
    result.details.append(
        DetailTable(
            "CPU ms per loop (client = the simulated raters in this process; other = the rest "
            "of the machine, e.g. other users)",
            ["run", "raters", "client", "app", "postgres", "other", "machine busy"],
            cpu_rows,
        )
    )
    _paced_table(result, size, runs, paced_raters)
    loaded = runs.saturated[labels[0]][paced_raters]
    calls = requests_per_judgment()
    if loaded.rate:
        # Little's law for a closed loop without think time: each rater always has one call
        # in flight, so the mean time per call is raters / calls per second.
        mean_ms = paced_raters / (calls * loaded.rate) * 1000
        result.notes.append(
            f"Back to back, {paced_raters} raters keep {paced_raters} calls in flight: at "
            f"{loaded.rate:.0f} loops/s ({calls * loaded.rate:.0f} calls/s) the mean call takes "
            f"{paced_raters}/{calls * loaded.rate:.0f} s = {mean_ms:.0f} ms (Little's law), so a "
            f"p99 ≤ {NEXT_P99_TARGET_MS:.0f} ms needs ≥ {paced_raters / 0.05:.0f} calls/s. The "
            "paced rows give raters a think time, as people have."
        )
    how = (
        "one request, POST …/judgment?next=true (the submit's transaction, then the claim's)"
        if calls == 1
        else "two requests, GET …/next then POST …/judgment"
    )
    result.notes.append(
        f"A loop is submit + next pair (two transactions); over HTTP {how}. The raw limit "
        "runs the app's own slot "
        "query and the same inserts/updates with psycopg, one connection per rater. Raters, "
        "app and Postgres share the machine's cores."
    )
    result.notes.append(
        f"The page loop: {paced_raters} raters back to back on the rating page, each with a "
        "login cookie, POSTing the choice form (CSRF token and idempotency key parsed from "
        "the page before) and reading the next pair from the answer; every 20 judgments the "
        "answer is the rater's summary, and the rater opens the rating page again. Its app CPU per "
        f"judgment is set against the {api_loop}'s at {paced_raters} raters in the same run."
    )
    result.raw |= {
        "saturated": {
            label: {str(clients): stats.summary() for clients, stats in by_clients.items()}
            for label, by_clients in runs.saturated.items()
        },
        "page": {label: stats.summary() for label, stats in runs.page.items()},
        "pgbench": {str(clients): value for clients, value in runs.pgbench.items()},
    }


def _report_paced(result: BenchResult, size: Size, runs: Runs, paced_raters: int) -> None:
    _compare_paced(result, size, runs, paced_raters)
    _paced_table(result, size, runs, paced_raters)


def _compare_paced(result: BenchResult, size: Size, runs: Runs, paced_raters: int) -> None:
    """The paced next-pair p99 of each server against the raw loop's, with the number of
    samples each rests on (a p99 is the (n/100)th slowest)."""
    for workers in size.workers:
        how = f"{_plural(workers)}, {paced_raters} raters thinking ~{size.think_seconds:g} s"
        paced, raw = runs.paced[f"{workers}w"], runs.paced["raw"]
        _compare_p99(result, how, paced, raw, PACED_NEXT_P99_TARGET_MS, with_samples=True)


def _compare_p99(
    result: BenchResult,
    how: str,
    app: RunStats,
    limit: RunStats,
    target_ms: float,
    *,
    with_samples: bool = False,
) -> None:
    """With one request per judgment, the app's request stores a judgment and leases the
    next pair, so its limit is the raw loop's whole judgment (claim + submit transactions);
    with two, `GET …/next` against the raw claim alone."""
    whole = requests_per_judgment() == 1
    reference = limit.judgments if whole else limit.first
    result.compare(
        f"next-pair p99, {how}",
        "ms",
        latency_ms(app.first)["p99"],
        latency_ms(reference)["p99"],
        "raw claim + submit p99" if whole else "raw claim p99",
        Target("value_at_most", target_ms),
        samples=(len(app.first), len(reference)) if with_samples else None,
    )


def _paced_table(result: BenchResult, size: Size, runs: Runs, paced_raters: int) -> None:
    rows: list[list[Any]] = []
    for label, paced in runs.paced.items():
        rows.append(_paced_row(label, paced.first, paced.errors))
        if paced.second:  # the raw loop: its claim above, its whole judgment here
            rows.append(_paced_row(f"{label} claim + submit", paced.judgments, paced.errors))
    result.raw["paced"] = {label: stats.summary() for label, stats in runs.paced.items()}
    result.details.append(
        DetailTable(
            f"paced next-pair latency, ms ({paced_raters} raters thinking "
            f"~{size.think_seconds:g} s, {size.paced_seconds:g} s after a "
            f"{size.settle_seconds:g} s settle; raw = the claim transaction, raw claim + "
            "submit = the raw loop's whole judgment, the work of one POST …/judgment?next=true)",
            ["run", "samples", "p50", "p99", "slower than p99", "max", "errors"],
            rows,
        )
    )


def _paced_row(label: str, samples: list[float], errors: int) -> list[Any]:
    latency = latency_ms(samples)
    return [
        label,
        len(samples),
        latency["p50"],
        latency["p99"],
        _slower_than_p99(len(samples)),
        latency["max"],
        errors,
    ]


def _slower_than_p99(samples: int) -> int:
    """How many samples are slower than the p99 (nearest rank, as `percentile`)."""
    return samples - max(math.ceil(0.99 * samples), 1) if samples else 0


def _busy_share(stats: RunStats) -> float | None:
    cpu = stats.cpu
    capacity = sum(value for key, value in cpu.items() if key != "wall")
    if capacity <= 0:
        return None
    return 1.0 - cpu.get("idle", 0.0) / capacity
