"""Analytics: the leaderboard (Bradley-Terry with 200 bootstrap rounds) plus style control over
many judgments and 20 models, read from Postgres by the analytics service; then a project of
200 models, recomputed whole, and its dashboard read from the stored snapshot.

Targets: the 200-round bootstrap costs at most 3 × one fit; the whole leaderboard report
(SQL reads, text features, fit, bootstrap, style control) takes at most 10 s. The reference
for the report is what its reads alone cost: COPY of the per-vote inputs (models, choice) and
of the answer texts it needs. With 200 models: the full recompute (every section, what a
snapshot holds) takes at most 10 s at 100k votes, and reading the dashboard and the
leaderboard from the snapshot of a 1M-vote project takes at most 200 ms at p95, over HTTP
from `pickwise serve`, beside the same server's p95 for /api/v1/me.
"""

import asyncio
import importlib
import math
import random
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import psycopg
from sqlalchemy.ext.asyncio import create_async_engine

from bench import analytics_snapshots as snapshots_bench
from bench import datagen
from bench.measure import CpuMeter, postmaster_pid
from bench.postgres import Server
from bench.report import BenchResult, DetailTable, Target
from pickwise.core.embedded_pg import to_sqlalchemy_url

NAME = "analytics"
N_MODELS = 20
MODELS = tuple(f"model-{index:02d}" for index in range(N_MODELS))
K = 3
RESPONSES_PER_PROMPT = 4
JUDGMENTS_PER_PROMPT = 6 * K
BOOTSTRAP_ROUNDS = 200
BOOTSTRAP_TARGET = 3.0
REPORT_TARGET_S = 10.0
# Log-odds gained per unit of normalised word-count difference (longer answers win more).
LENGTH_EFFECT = 0.6
T = TypeVar("T")


MANY_MODELS = 200
RECOMPUTE_TARGET_S = 10.0
CACHED_READ_TARGET_MS = 200.0


@dataclass(frozen=True)
class Size:
    judgments: int
    repeats: int  # timings of the pure fits are the best of this many
    many_models_judgments: int  # the 200-model project that is recomputed whole
    cached_read_judgments: int  # the 200-model project whose snapshot is read
    reads: int  # timed reads of each page from the snapshot


SIZES = {
    "full": Size(1_000_000, 3, 100_000, 1_000_000, 60),
    "quick": Size(100_000, 2, 100_000, 100_000, 40),
    "smoke": Size(2_000, 1, 2_000, 2_000, 3),
}


class _Judge:
    """Choices from a Bradley-Terry model with a preference for longer answers."""

    def __init__(
        self, corpus: datagen.Corpus, pool: datagen.TextPool, seed: int, n_models: int
    ) -> None:
        rng = random.Random(seed)
        self.strength = [rng.gauss(0, 0.6) for _ in range(n_models)]
        self.corpus = corpus
        self.words = [pool.answer(index).words for index in corpus.response_answers]

    def __call__(self, offset: int, rng: random.Random) -> str:
        a, b = self.corpus.pair_responses(offset)
        models = self.corpus.response_models
        words_a, words_b = self.words[a], self.words[b]
        logit = self.strength[models[a]] - self.strength[models[b]]
        logit += LENGTH_EFFECT * (words_a - words_b) / (words_a + words_b)
        draw = rng.random()
        if draw < 0.08:
            return "tie"
        if draw < 0.10:
            return "both_bad"
        return "a" if rng.random() < 1 / (1 + math.exp(-logit)) else "b"


def load(url: str, judgments: int, seed: int = 3, n_models: int = N_MODELS) -> datagen.Setup:
    setup = datagen.make_project(url, slug="analytics", raters=30, raters_per_pair=K, seed=seed)
    pool = datagen.TextPool(seed=seed, mean_words=60)
    verbosity = [random.Random(seed + index).random() for index in range(n_models)]
    models = MODELS if n_models == N_MODELS else tuple(f"model-{i:03d}" for i in range(n_models))
    spec = datagen.CorpusSpec(
        prompts=math.ceil(judgments / JUDGMENTS_PER_PROMPT),
        responses_per_prompt=RESPONSES_PER_PROMPT,
        models=models,
        seed=seed,
        verbosity=verbosity,
    )
    with psycopg.connect(url) as conn:
        datagen.fast_load(conn)
        corpus = datagen.write_corpus(conn, setup, spec, pool)
        judge = _Judge(corpus, pool, seed, n_models)
        datagen.write_judgments(conn, setup, corpus, K, judge, seed=seed)
    return setup


def _copy_seconds(url: str, query: str, params: dict[str, Any]) -> tuple[float, int]:
    started = time.perf_counter()
    size = 0
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cursor,
        cursor.copy(f"COPY ({query}) TO STDOUT", params) as copy,
    ):
        for block in copy:
            size += len(block)
    return time.perf_counter() - started, size


def read_floor(url: str, project_id: int) -> dict[str, float]:
    """COPY out what a leaderboard report has to read: every vote's two models and choice,
    and the text of every answer in a vote."""
    from pickwise.analytics.repository import kept_votes

    where, params = kept_votes(project_id)
    votes = (
        "SELECT ra.model, rb.model, j.choice FROM judgments j "
        "JOIN pairs pr ON pr.id = j.pair_id "
        "JOIN responses ra ON ra.id = pr.response_a_id "
        f"JOIN responses rb ON rb.id = pr.response_b_id WHERE {where}"
    )
    texts = (
        "SELECT r.id, r.content FROM responses r WHERE r.id IN ("
        f"SELECT pr.response_a_id FROM judgments j JOIN pairs pr ON pr.id = j.pair_id WHERE {where}"
        " UNION "
        f"SELECT pr.response_b_id FROM judgments j JOIN pairs pr ON pr.id = j.pair_id WHERE {where}"
        ") ORDER BY r.id"
    )
    votes_s, votes_bytes = _copy_seconds(url, votes, params)
    texts_s, texts_bytes = _copy_seconds(url, texts, params)
    return {
        "votes_s": votes_s,
        "texts_s": texts_s,
        "seconds": votes_s + texts_s,
        "bytes": votes_bytes + texts_bytes,
    }


async def _timed(work: Callable[[], Awaitable[T]]) -> tuple[float, T]:
    started = time.perf_counter()
    value = await work()
    return time.perf_counter() - started, value


def _best_of(repeats: int, work: Callable[[], Any]) -> float:
    best = math.inf
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


@contextmanager
def _recorded(module: Any, name: str, into: dict[str, Any]) -> Iterator[None]:
    """Time (and keep the result of) every await of `module.name` while inside."""
    original = getattr(module, name)

    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        value = await original(*args, **kwargs)
        into[name] = (time.perf_counter() - started, value)
        return value

    setattr(module, name, wrapper)
    try:
        yield
    finally:
        setattr(module, name, original)


async def service_timings(url: str, project_id: int, repeats: int) -> dict[str, Any]:
    """The service's leaderboard end to end (its SQL reads timed as they happen, its CPU and
    Postgres' CPU measured), then the pure fits again on the same inputs, one by one."""
    from pickwise.analytics import repository, service
    from pickwise.analytics.bradley_terry import (
        bootstrap_cell_counts,
        counted_battles,
        fit_bradley_terry,
        fit_bradley_terry_batch,
    )

    # The analytics modules import scipy when they first compute (the app starts without it);
    # a worker that has served one report has it loaded, so the timing starts warm.
    for module in ("scipy.optimize", "scipy.sparse", "scipy.special", "scipy.stats"):
        importlib.import_module(module)

    engine = create_async_engine(to_sqlalchemy_url(url))
    meter = CpuMeter({"postgres": postmaster_pid(url)})
    seen: dict[str, Any] = {}
    timings: dict[str, Any] = {}
    try:
        async with repository.read_only_connection(engine) as connection:
            with (
                _recorded(repository, "pair_outcomes", seen),
                _recorded(service, "_style_input", seen),
            ):
                before = meter.sample()
                seconds, board = await _timed(
                    lambda: service.leaderboard(
                        connection, project_id, bootstrap_rounds=BOOTSTRAP_ROUNDS
                    )
                )
                cpu = CpuMeter.spent(before, meter.sample())
    finally:
        await engine.dispose()
    timings["leaderboard_s"] = seconds
    timings["leaderboard_cpu_s"] = cpu["client"]
    timings["postgres_cpu_s"] = cpu.get("postgres", 0.0)
    timings["other_cpu_s"] = cpu["other"]
    timings["models"] = len(board.models)
    timings["votes"] = board.votes
    timings["style_converged"] = board.style_converged
    timings["sql_pair_outcomes_s"], pairs = seen["pair_outcomes"]
    timings["style_input_s"], style_input = seen["_style_input"]
    models = sorted({row.model for row in board.models})
    battles = counted_battles(
        style_input.model_a, style_input.model_b, style_input.outcome_counts, len(models)
    )
    timings["one_fit_s"] = _best_of(repeats, lambda: fit_bradley_terry(battles))

    def bootstrap() -> None:
        draws = bootstrap_cell_counts(battles, BOOTSTRAP_ROUNDS, np.random.default_rng(0))
        fit_bradley_terry_batch(battles, draws)

    timings["bootstrap_s"] = _best_of(repeats, bootstrap)
    timings["style_fit_s"] = _best_of(
        repeats, lambda: service.style_report(style_input, len(models))
    )
    timings["pairs"] = len(pairs.response_a)
    timings["style_rows"] = len(style_input.model_a)
    return timings


def run(server: Server, size_name: str, workdir: Path | None = None) -> BenchResult:
    size = SIZES[size_name]
    started = time.perf_counter()
    result = BenchResult(
        name=NAME,
        size=size_name,
        params={
            "judgments": size.judgments,
            "models": N_MODELS,
            "k": K,
            "responses_per_prompt": RESPONSES_PER_PROMPT,
            "bootstrap_rounds": BOOTSTRAP_ROUNDS,
            "style_features": "words, headings, list_items, bold",
        },
        server=server.describe(),
    )
    url = server.create_database("analytics")
    setup = load(url, size.judgments)
    datagen.finish_load(url)
    read_floor(url, setup.project_id)  # warm the cache once; every reader then finds it warm
    floor = read_floor(url, setup.project_id)
    timings = asyncio.run(service_timings(url, setup.project_id, size.repeats))

    one_fit_from_votes = timings["sql_pair_outcomes_s"] + timings["one_fit_s"]
    result.compare(
        f"bootstrap ({BOOTSTRAP_ROUNDS} rounds) vs one fit over the votes",
        "ms",
        timings["bootstrap_s"] * 1000,
        one_fit_from_votes * 1000,
        "votes counted per pair in SQL + Newton fit",
        Target("ratio_at_most", BOOTSTRAP_TARGET),
    )
    result.compare(
        f"bootstrap ({BOOTSTRAP_ROUNDS} rounds) vs the Newton fit alone",
        "ms",
        timings["bootstrap_s"] * 1000,
        timings["one_fit_s"] * 1000,
        "fit on the counted cells",
    )
    result.compare(
        f"leaderboard report, {timings['votes']:,} votes, {timings['models']} models",
        "s",
        timings["leaderboard_s"],
        floor["seconds"],
        "COPY of its inputs",
        Target("value_at_most", REPORT_TARGET_S),
    )
    result.details.append(
        DetailTable(
            "where the report's time goes (seconds)",
            ["part", "seconds"],
            [
                ["service.leaderboard, end to end", timings["leaderboard_s"]],
                ["  its CPU (pickwise process, all threads)", timings["leaderboard_cpu_s"]],
                ["  Postgres CPU meanwhile", timings["postgres_cpu_s"]],
                ["  SQL: votes per pair and outcome (GROUP BY)", timings["sql_pair_outcomes_s"]],
                ["  SQL texts + style counts: style input", timings["style_input_s"]],
                ["  one Bradley-Terry fit", timings["one_fit_s"]],
                [f"  bootstrap, {BOOTSTRAP_ROUNDS} rounds", timings["bootstrap_s"]],
                [
                    f"  style-controlled fit ({timings['style_rows']:,} pair rows)",
                    timings["style_fit_s"],
                ],
                ["COPY: votes (model a, model b, choice)", floor["votes_s"]],
                ["COPY: texts of voted answers", floor["texts_s"]],
            ],
        )
    )
    result.notes.append(
        "SQL parts are timed inside the end-to-end run; the fits are timed again on the same "
        f"inputs (best of {size.repeats}). The service runs the bootstrap in a thread while "
        "it reads and counts the texts, so the parts need not add up to the whole."
    )
    many_models = _many_models(server, size, workdir or Path(tempfile.mkdtemp()), result)
    result.raw = {"timings": timings, "read_floor": floor, "many_models": many_models}
    result.seconds = time.perf_counter() - started
    return result


def _many_models(server: Server, size: Size, workdir: Path, result: BenchResult) -> dict[str, Any]:
    """200 models: a full recompute, and reads of the stored snapshot over HTTP."""
    url = server.create_database("analytics_200")
    setup = load(url, size.many_models_judgments, n_models=MANY_MODELS)
    datagen.finish_load(url)
    floor = read_floor(url, setup.project_id)
    recompute = snapshots_bench.run_recompute(url, setup.project_id, by_section=True)
    result.compare(
        f"full recompute (every section), {MANY_MODELS} models, "
        f"{size.many_models_judgments:,} votes",
        "s",
        recompute["report"],
        floor["seconds"],
        "COPY of the leaderboard's inputs",
        Target("value_at_most", RECOMPUTE_TARGET_S),
    )
    raw: dict[str, Any] = {"recompute": recompute}
    if size.cached_read_judgments != size.many_models_judgments:
        url = server.create_database("analytics_200_big")
        setup = load(url, size.cached_read_judgments, n_models=MANY_MODELS)
        datagen.finish_load(url)
        raw["first_computation"] = snapshots_bench.run_recompute(
            url, setup.project_id, by_section=False
        )
    reads = snapshots_bench.cached_reads(url, setup, size.reads, workdir)
    me = snapshots_bench.p95_ms(reads["me"])
    for name, label in (("dashboard", "dashboard page"), ("leaderboard", "leaderboard API")):
        result.compare(
            f"{label} from the snapshot, {MANY_MODELS} models, "
            f"{size.cached_read_judgments:,} votes (p95 of {size.reads})",
            "ms",
            snapshots_bench.p95_ms(reads[name]),
            me,
            "GET /api/v1/me, same server (p95)",
            Target("value_at_most", CACHED_READ_TARGET_MS),
        )
    rows = [
        [f"  {name}", seconds]
        for name, seconds in recompute.items()
        if name not in ("report", "report_cpu")
    ]
    first = raw.get("first_computation", {}).get("report")
    result.details.append(
        DetailTable(
            f"{MANY_MODELS} models: where a full recompute's time goes (seconds)",
            ["part", "seconds"],
            [
                [f"full recompute, {size.many_models_judgments:,} votes", recompute["report"]],
                ["  its CPU (pickwise process, all threads)", recompute["report_cpu"]],
                *rows,
                *(
                    [[f"full recompute, {size.cached_read_judgments:,} votes", first]]
                    if first is not None
                    else []
                ),
            ],
        )
    )
    result.notes.append(
        "The sections are also computed one by one after the full recompute, to show where "
        "its time goes; the reads are timed with the snapshot up to date (a stale one is "
        "answered the same way, and recomputed behind)."
    )
    raw["reads_ms"] = {name: [1000 * value for value in values] for name, values in reads.items()}
    return raw
