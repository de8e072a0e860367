"""The pairs explorer on a big project: server time of a 50-row page for each kind of filter,
of text searches from rare to common words, of one pair and of one rater's audit, against
`GET /api/v1/me` measured in the same run (what any request costs). The plan of every
statement behind each page (EXPLAIN ANALYZE) is saved beside the results.

The project: 4 batches of prompts with 4 answers each (6 pairs per prompt) from 8 models,
3 votes on every pair of the first three batches from 50 raters (ties, both bad, rationales),
the fourth batch waiting for votes; a few hundred pairs flagged, gold, excluded, decided.
A second, 10x smaller project in the same database gives the memory comparison: the server's
peak RSS while paging the big project against the small one.
"""

import asyncio
import dataclasses
import json
import math
import random
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from bench import datagen
from bench.app_server import serve
from bench.measure import peak_rss_mb, percentile, reset_peak_rss
from bench.postgres import Server
from bench.report import RESULTS_DIR, BenchResult, DetailTable, Target
from pickwise.core.embedded_pg import to_sqlalchemy_url

NAME = "explorer"
K = 3
RESPONSES_PER_PROMPT = 4
PAIRS_PER_PROMPT = 6
BATCHES = 4  # the last one has no votes yet
MODELS = tuple(f"model-{index:02d}" for index in range(8))
RATERS = 50
PAGE_TARGET_MS = 150.0
SEARCH_TARGET_MS = 300.0
RSS_TARGET = 1.2
DAY_ONE = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
# Rationales: a few stock phrases, one word of which is rare (the rationale search).
RATIONALES = (
    "A is more accurate and shorter.",
    "B answers the question that was asked.",
    "Both miss the point, B less so.",
    "The left one hedges too much.",
    "Clearer structure, correct facts.",
)
RARE_RATIONALE = "Contradicts itself about the halting problem."


@dataclass(frozen=True)
class Size:
    judged_pairs: int  # pairs with K votes each
    waiting_pairs: int  # pairs of the last batch, no votes
    small_factor: int | None  # the small project is this many times smaller; None: no RSS part
    reads: int  # requests per page kind


SIZES = {
    "full": Size(1_000_000, 60_000, 10, 30),
    "quick": Size(60_000, 6_000, 10, 12),
    "smoke": Size(300, 30, None, 1),
}


@dataclass(frozen=True)
class Loaded:
    setup: datagen.Setup
    batch_ids: list[int]
    pairs: int
    judgments: int
    first_pair: int
    rater_id: int
    search: dict[str, str]  # kind -> words


def _choose(offset: int, rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.42:
        return "a"
    if draw < 0.82:
        return "b"
    return "tie" if draw < 0.93 else "both_bad"


def _rationale(offset: int, rng: random.Random) -> str | None:
    draw = rng.random()
    if draw < 0.0005:
        return RARE_RATIONALE
    if draw < 0.2:
        return RATIONALES[offset % len(RATIONALES)]
    return None


def _word_frequencies(pool: datagen.TextPool) -> list[tuple[float, str]]:
    """Each vocabulary word with the share of pool answers that contain it."""
    answers = [set(answer.text.lower().replace("*", " ").split()) for answer in pool.answers]
    shares = []
    for word in pool.vocabulary:
        found = sum(1 for words in answers if word in words or f"{word}." in words)
        if found:
            shares.append((found / len(answers), word))
    return sorted(shares)


def _search_terms(pool: datagen.TextPool) -> dict[str, str]:
    shares = _word_frequencies(pool)
    common = shares[-1][1]
    medium = min(shares, key=lambda item: abs(item[0] - 0.02))[1]
    answer = pool.answer(7).text.replace("*", "").replace("#", "").split()
    phrase = " ".join(word.strip(".,-") for word in answer[2:4])
    return {
        # A number: answer n of each batch ends with "(#n)", prompt n with "(n)".
        "search, rare word": "12345",
        "search, medium word": medium,
        "search, common word": common,
        "search, a phrase": f'"{phrase}"',
        "search, rationale word": "halting",
    }


def load_project(
    url: str, slug: str, judged: int, waiting: int, seed: int, raters: list[int]
) -> Loaded:
    setup = datagen.make_project(
        url,
        slug=slug,
        raters=0 if raters else RATERS,
        raters_per_pair=K,
        seed=seed,
        existing_rater_ids=raters,
    )
    pool = datagen.TextPool(seed=seed, mean_words=60)
    per_batch = math.ceil(judged / PAIRS_PER_PROMPT / (BATCHES - 1))
    judgments = 0
    with psycopg.connect(url) as conn:
        datagen.fast_load(conn)
        batch_ids = [setup.batch_id] + [
            int(row[0])
            for row in conn.execute(
                "INSERT INTO batches (project_id, filename, sha256, size_bytes, source, "
                "prompts_new, prompts_unchanged, responses_new, pairs_new) "
                "SELECT %s, 'batch-' || n || '.jsonl', repeat('0', 64), 0, 'cli', 0, 0, 0, 0 "
                "FROM generate_series(2, %s) n RETURNING id",
                (setup.project_id, BATCHES),
            ).fetchall()
        ]
        first_pair = datagen.next_ids(conn, "pairs")
        for number, batch_id in enumerate(batch_ids):
            voted = number < BATCHES - 1
            prompts = per_batch if voted else math.ceil(waiting / PAIRS_PER_PROMPT)
            spec = datagen.CorpusSpec(
                prompts=prompts,
                responses_per_prompt=RESPONSES_PER_PROMPT,
                models=MODELS,
                seed=seed * 10 + number,
            )
            # Prompt ids are unique per project: each batch gets its own prefix.
            batch_setup = dataclasses.replace(setup, batch_id=batch_id, slug=f"{slug}-b{number}")
            corpus = datagen.write_corpus(conn, batch_setup, spec, pool)
            conn.execute(
                "UPDATE pairs SET created_at = %s WHERE batch_id = %s",
                (DAY_ONE + timedelta(days=7 * number), batch_id),
            )
            if voted:
                judgments += datagen.write_judgments(
                    conn, setup, corpus, K, _choose, seed=seed + number, rationale=_rationale
                )
        pairs = datagen.next_ids(conn, "pairs") - first_pair
        _curate(conn, setup, first_pair, pairs, seed)
        conn.commit()
    datagen.finish_load(
        url,
        (
            "batches",
            "prompts",
            "responses",
            "pairs",
            "pair_slots",
            "assignments",
            "judgments",
            "pair_flags",
            "adjudications",
        ),
    )
    asyncio.run(_rebuild_summaries(url, setup.project_id))
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE pair_summaries")
    return Loaded(
        setup=setup,
        batch_ids=batch_ids,
        pairs=pairs,
        judgments=judgments,
        first_pair=first_pair,
        rater_id=setup.rater_ids[3],
        search=_search_terms(pool),
    )


def _curate(
    conn: psycopg.Connection[Any], setup: datagen.Setup, first: int, pairs: int, seed: int
) -> None:
    """About 1 pair in 2,000 flagged, gold, excluded from exports, or decided; one rater
    excluded from the project."""
    rng = random.Random(seed)
    chosen = rng.sample(range(first, first + pairs), min(pairs, max(8, pairs // 500)))
    quarter = max(1, len(chosen) // 4)
    flagged, gold, excluded, decided = (
        chosen[:quarter],
        chosen[quarter : 2 * quarter],
        chosen[2 * quarter : 3 * quarter],
        chosen[3 * quarter :],
    )
    conn.execute("UPDATE pairs SET status = 'flagged' WHERE id = ANY(%s)", (flagged,))
    conn.execute(
        "INSERT INTO pair_flags (project_id, pair_id, rater_id, reason, note) "
        "SELECT %s, id, %s, 'other', 'looks broken' FROM unnest(%s::bigint[]) id",
        (setup.project_id, setup.rater_ids[0], flagged),
    )
    conn.execute(
        "UPDATE pairs SET is_gold = true, gold_winner_id = response_a_id WHERE id = ANY(%s)",
        (gold,),
    )
    conn.execute("UPDATE pairs SET excluded = true WHERE id = ANY(%s)", (excluded,))
    conn.execute(
        "INSERT INTO adjudications (project_id, pair_id, decision, note, decided_at, "
        "is_current) SELECT %s, id, 'a', 'bench', now(), true FROM unnest(%s::bigint[]) id",
        (setup.project_id, decided),
    )
    conn.execute(
        "INSERT INTO project_rater_exclusions (project_id, user_id) VALUES (%s, %s)",
        (setup.project_id, setup.rater_ids[-1]),
    )


async def _rebuild_summaries(url: str, project_id: int) -> None:
    from pickwise.review.repository import rebuild_summaries

    engine = create_async_engine(to_sqlalchemy_url(url))
    try:
        async with engine.begin() as connection:
            await rebuild_summaries(connection, project_id)
    finally:
        await engine.dispose()


# --- what is measured --------------------------------------------------------------------


@dataclass(frozen=True)
class Kind:
    name: str
    path: str  # relative to /api/v1/projects/{id} or a page
    params: dict[str, Any]
    search: bool = False


def kinds(loaded: Loaded, next_cursor: str | None) -> list[Kind]:
    batch = loaded.batch_ids[1]
    api = "/pairs"
    listing = [
        Kind("no filter, newest first", api, {}),
        Kind("batch", api, {"batch": [batch]}),
        Kind("status: disputed", api, {"status": ["disputed"]}),
        Kind("status: waiting", api, {"status": ["waiting"]}),
        Kind("status: adjudicated", api, {"status": ["adjudicated"]}),
        Kind("flagged", api, {"flagged": "true"}),
        Kind("gold", api, {"gold": "true"}),
        Kind("model (either side)", api, {"model": MODELS[3]}),
        Kind("model pair", api, {"model": MODELS[1], "versus": MODELS[5]}),
        Kind(
            "agreement <= 0.5, lowest first", api, {"agreement_max": 0.5, "sort": "agreement_low"}
        ),
        Kind("agreement, highest first", api, {"sort": "agreement_high"}),
        Kind("has a tie", api, {"tie": "true"}),
        Kind("both bad, most votes first", api, {"both_bad": "true", "sort": "votes_most"}),
        Kind("has a rationale", api, {"rationale": "true"}),
        Kind("voted by a rater", api, {"rater": loaded.rater_id}),
        Kind(
            "created between",
            api,
            {
                "created_from": (DAY_ONE + timedelta(days=6)).date().isoformat(),
                "created_to": (DAY_ONE + timedelta(days=8)).date().isoformat(),
            },
        ),
        Kind(
            "model + agreement + tie",
            api,
            {"model": MODELS[2], "agreement_max": 0.67, "tie": "true", "sort": "agreement_low"},
        ),
    ]
    if next_cursor is not None:
        listing.append(Kind("page 2 (cursor), newest first", api, {"after": next_cursor}))
    searches = [Kind(name, api, {"q": words}, search=True) for name, words in loaded.search.items()]
    searches.append(
        Kind(
            "search + model + has a tie",
            api,
            {"q": loaded.search["search, medium word"], "model": MODELS[4], "tie": "true"},
            search=True,
        )
    )
    pair = loaded.first_pair + 4242 % max(loaded.pairs, 1)
    pages = [
        Kind("pair detail (API)", f"/pairs/{pair}", {}),
        Kind("explorer page (HTML), disputed", "page:/pairs", {"status": ["disputed"]}),
        Kind("pair page (HTML)", f"page:/pairs/{pair}", {"status": ["disputed"]}),
        Kind("rater audit page (HTML)", f"page:/raters/{loaded.rater_id}", {}),
    ]
    return listing + searches + pages


def _url(project_id: int, kind: Kind) -> str:
    if kind.path.startswith("page:"):
        return f"/admin/projects/{project_id}{kind.path[5:]}"
    return f"/api/v1/projects/{project_id}{kind.path}"


def read_pages(
    client: httpx.Client, loaded: Loaded, reads: int
) -> tuple[dict[str, list[float]], list[Kind], dict[str, Any]]:
    project = loaded.setup.project_id
    first = client.get(_url(project, Kind("", "/pairs", {})), params={})
    first.raise_for_status()
    page_kinds = kinds(loaded, first.json()["next_cursor"])
    seconds: dict[str, list[float]] = {kind.name: [] for kind in page_kinds}
    seconds["GET /api/v1/me"] = []
    answers: dict[str, Any] = {}
    for kind in page_kinds:  # warm: imports, plans, caches
        response = client.get(_url(project, kind), params=kind.params)
        assert response.status_code == 200, (kind.name, response.status_code, response.text[:300])
        if not kind.path.startswith("page:") and "items" in response.json():
            body = response.json()
            answers[kind.name] = {"rows": len(body["items"]), "count": body["count"]}
    for _ in range(reads):
        for kind in page_kinds:
            started = time.perf_counter()
            response = client.get(_url(project, kind), params=kind.params)
            seconds[kind.name].append(time.perf_counter() - started)
            assert response.status_code == 200, kind.name
        started = time.perf_counter()
        assert client.get("/api/v1/me").status_code == 200
        seconds["GET /api/v1/me"].append(time.perf_counter() - started)
    return seconds, page_kinds, answers


def _ms(values: list[float], share: float) -> float | None:
    found = percentile(values, share)
    return None if found is None else found * 1000


# --- plans -------------------------------------------------------------------------------


async def explain_pages(
    url: str, loaded: Loaded, page_kinds: list[Kind]
) -> dict[str, tuple[str, float]]:
    """EXPLAIN (ANALYZE, BUFFERS) of every statement each kind of page runs, as the app runs
    them (captured in-process from the service): per kind, the plans as text and the total
    execution ms."""
    from pickwise.models import Project
    from pickwise.review import pair_service, service
    from pickwise.review.schemas import PairFilter
    from pickwise.vocabulary import PairSort

    engine = create_async_engine(to_sqlalchemy_url(url))
    captured: list[tuple[str, Any]] = []

    def capture(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        captured.append((statement, parameters))

    plans: dict[str, tuple[str, float]] = {}
    try:
        for kind in page_kinds:
            if kind.path.startswith("page:"):
                continue
            # A session per kind: each starts from a clean transaction.
            async with AsyncSession(engine, expire_on_commit=False) as session:
                project = await session.get(Project, loaded.setup.project_id)
                assert project is not None
                captured.clear()
                event.listen(engine.sync_engine, "before_cursor_execute", capture)
                try:
                    if kind.path.startswith("/pairs/"):
                        pair_id = int(kind.path.rsplit("/", 1)[1])
                        await pair_service.pair_detail(session, project, pair_id)
                    else:
                        params = dict(kind.params)
                        after = params.pop("after", None)
                        sort = PairSort(params.pop("sort", "newest"))
                        pairs = PairFilter.model_validate(params)
                        await service.list_pairs(session, project, pairs, sort, after=after)
                finally:
                    event.remove(engine.sync_engine, "before_cursor_execute", capture)
                plans[kind.name] = await _explain_all(session, kind, list(captured))
    finally:
        await engine.dispose()
    return plans


_NOT_PLANNED = ("SAVEPOINT", "RELEASE", "ROLLBACK", "SELECT set_config", "SELECT current_setting")


async def _explain_all(
    session: AsyncSession, kind: Kind, statements: list[tuple[str, Any]]
) -> tuple[str, float]:
    lines = [f"-- {kind.name}: {kind.params}", ""]
    total = 0.0
    connection = await session.connection()
    for statement, parameters in statements:
        if statement.lstrip().startswith(_NOT_PLANNED) or statement.lstrip().startswith("EXPLAIN"):
            continue
        result = await connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, BUFFERS) {statement}", parameters
        )
        plan = [row[0] for row in result]
        total += next(
            (float(line.split(":")[1].split()[0]) for line in plan if "Execution Time" in line),
            0.0,
        )
        lines += [statement.strip(), "", *plan, "", "-" * 80, ""]
    return "\n".join(lines), total


def save_plans(plans: dict[str, tuple[str, float]], folder: Path) -> dict[str, float]:
    """One text file per kind of page; returns each kind's total execution ms."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, (plan, _) in plans.items():
        safe = "".join(char if char.isalnum() else "-" for char in name).strip("-")
        (folder / f"{safe}.txt").write_text(plan)
    return {name: total for name, (_, total) in plans.items()}


# --- the run -----------------------------------------------------------------------------


def run(server: Server, size_name: str, workdir: Path | None = None) -> BenchResult:
    size = SIZES[size_name]
    started = time.perf_counter()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="pickwise-bench-explorer-"))
    result = BenchResult(
        name=NAME,
        size=size_name,
        params={
            "judged_pairs": size.judged_pairs,
            "waiting_pairs": size.waiting_pairs,
            "k": K,
            "responses_per_prompt": RESPONSES_PER_PROMPT,
            "models": len(MODELS),
            "raters": RATERS,
            "reads_per_kind": size.reads,
            "page_size": 50,
        },
        server=server.describe(),
    )
    load_started = time.perf_counter()
    url, large, small = _data(server, size_name, size)
    load_seconds = time.perf_counter() - load_started

    # The rater audit's numbers come from the analytics snapshot, computed first (a project
    # that is looked at has one), by a server of its own: the one that serves the pages then
    # starts fresh, so its memory is what paging takes.
    projects = [large, *([small] if small is not None else [])]
    with serve(url, workers=1, log=workdir / "serve-snapshots.log") as app:
        for loaded in projects:
            headers = {"Authorization": f"Bearer {loaded.setup.admin_token}"}
            with httpx.Client(base_url=app.base_url, headers=headers, timeout=600) as client:
                _wait_for_snapshot(client, loaded.setup.project_id, loaded.rater_id)
    rss: dict[str, float | None] = {}
    with serve(url, workers=1, log=workdir / "serve.log") as app:
        if small is not None:
            small_headers = {"Authorization": f"Bearer {small.setup.admin_token}"}
            with httpx.Client(base_url=app.base_url, headers=small_headers, timeout=600) as client:
                read_pages(client, small, max(2, size.reads // 3))
            rss["small"] = peak_rss_mb(app.pid)
            reset_peak_rss(app.pid)
        headers = {"Authorization": f"Bearer {large.setup.admin_token}"}
        with httpx.Client(base_url=app.base_url, headers=headers, timeout=600) as client:
            seconds, page_kinds, answers = read_pages(client, large, size.reads)
        rss["large"] = peak_rss_mb(app.pid)

    plans_dir = (
        RESULTS_DIR / "explorer-plans"
        if size_name == "full"
        else (
            RESULTS_DIR / "quick" / "explorer-plans" if size_name == "quick" else workdir / "plans"
        )
    )
    executions = save_plans(asyncio.run(explain_pages(url, large, page_kinds)), plans_dir)

    me = seconds["GET /api/v1/me"]
    me_p95 = _ms(me, 0.95)
    rows = []
    for kind in page_kinds:
        values = seconds[kind.name]
        target = SEARCH_TARGET_MS if kind.search else PAGE_TARGET_MS
        p95 = _ms(values, 0.95)
        result.compare(
            f"{kind.name}, p95",
            "ms",
            p95,
            me_p95,
            "GET /api/v1/me",
            Target("value_at_most", target),
        )
        answer = answers.get(kind.name, {})
        count = answer.get("count", {})
        rows.append(
            [
                kind.name,
                _ms(values, 0.5),
                p95,
                executions.get(kind.name),
                answer.get("rows"),
                None if not count else f"{count['value']:,}{'' if count['exact'] else ' (est.)'}",
            ]
        )
    if small is not None:
        result.compare(
            f"server peak RSS paging {large.pairs:,} vs {small.pairs:,} pairs",
            "MB",
            rss.get("large"),
            rss.get("small"),
            "the small project",
            Target("ratio_at_most", RSS_TARGET),
        )
    result.details.append(
        DetailTable(
            f"time per request over HTTP (loopback, {size.reads} reads each, one worker); SQL "
            "ms: the page's statements under EXPLAIN ANALYZE, run to the end (the count "
            "included, which the app gives up after 30 ms)",
            ["page", "p50 ms", "p95 ms", "SQL ms", "rows", "matches"],
            rows,
        )
    )
    result.details.append(
        DetailTable(
            "data",
            ["project", "pairs", "judgments", "load s"],
            [
                ["large", large.pairs, large.judgments, load_seconds],
                *([["small", small.pairs, small.judgments, None]] if small else []),
            ],
        )
    )
    result.notes.append(
        f"Plans: {plans_dir}. Search words: "
        + "; ".join(f"{name}: {words}" for name, words in large.search.items())
    )
    result.raw = {"seconds": seconds, "rss_mb": rss, "answers": answers, "sql_ms": executions}
    result.seconds = time.perf_counter() - started
    return result


def _data(server: Server, size_name: str, size: Size) -> tuple[str, Loaded, Loaded | None]:
    """The database and its projects: loaded now or, on a kept server that already holds
    them (`--keep-data`), the earlier run's, upgraded to the migrations' head."""
    database = f"explorer_{size_name}"
    record = server.kept / f"{database}.json" if server.kept is not None else None
    if record is not None and record.exists() and server.has_database(database):
        kept = json.loads(record.read_text())
        return (
            server.open_database(database),
            _loaded(kept["large"]),
            None if kept["small"] is None else _loaded(kept["small"]),
        )
    if record is not None:
        record.unlink(missing_ok=True)  # a half-made database is never reused
    url = server.create_database(database)
    large = load_project(url, "explorer-large", size.judged_pairs, size.waiting_pairs, 2, [])
    small = None
    if size.small_factor is not None:
        small = load_project(
            url,
            "explorer-small",
            size.judged_pairs // size.small_factor,
            size.waiting_pairs // size.small_factor,
            1,
            large.setup.rater_ids,
        )
    if record is not None:
        record.write_text(
            json.dumps(
                {
                    "large": dataclasses.asdict(large),
                    "small": None if small is None else dataclasses.asdict(small),
                }
            )
        )
    return url, large, small


def _loaded(fields: dict[str, Any]) -> Loaded:
    return Loaded(**{**fields, "setup": datagen.Setup(**fields["setup"])})


def _wait_for_snapshot(
    client: httpx.Client, project_id: int, rater_id: int, limit: float = 1800
) -> None:
    """Open a rater's audit page until their numbers are there: a big project's first read
    starts computing the analytics snapshot in the background."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        page = client.get(f"/admin/projects/{project_id}/raters/{rater_id}")
        page.raise_for_status()
        if "being computed" not in page.text:
            return
        time.sleep(3)
    raise TimeoutError("the analytics snapshot was not computed in time")
