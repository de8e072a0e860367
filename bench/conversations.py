"""Live conversations: what pickwise adds between a model and the rater, and what 100 streaming
conversations cost the raters of a pair project on the same worker.

1. Time to first token. One rater sends a first message (`POST .../conversations`, which
   commits the turn and starts both replies) and follows the turn's event stream; the time
   from sending to the first piece of text is held against the same fake endpoint asked
   directly (`POST /v1/chat/completions`, stream), sample for sample, interleaved. The
   figure is the difference of their p95s: what pickwise adds (target ≤ 10 ms).
2. 100 conversations at once. A separate process drives 100 raters, each writing a message,
   following both replies to their end, voting and going on (their first messages spread over
   one reply's length, their pauses drawn around a mean: 100 people do not all press send in
   the same half second, which an earlier version of this bench had them do every 15 s; all
   100 are streaming before the raters are measured); meanwhile 16 raters of a pair
   project run the rater loop (next pair, judgment, ~1 s of thought between loops) on the
   same `pickwise serve` worker. Their next-pair p99 is held against the same loop on the
   idle worker, measured in the same run (and against the rater loop's own target, 50 ms).

The model is tests/conversations/fake_llm.py as its own server process, streaming words at
a fixed pace; the CPU of each part (app, Postgres, fake model, drivers) is recorded. The
app's CPU per turn (part 1) and per 1,000 streamed tokens (the conversations alone, before
part 2's raters start) are figures a busy machine barely moves, unlike its latencies.
"""

import asyncio
import json
import multiprocessing
import os
import random
import re
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import httpx
import psycopg

from bench import datagen
from bench.app_server import serve
from bench.measure import CpuMeter, latency_ms, percentile, postmaster_pid, stop_process
from bench.postgres import Server
from bench.rater_loop import MODELS, NEXT_P99_TARGET_MS, K, http_run
from bench.report import BenchResult, DetailTable, Target

NAME = "conversations"
ROOT = Path(__file__).resolve().parents[1]
ADDED_TTFT_TARGET_MS = 10.0
CPU_PARTS = ("app", "postgres", "fake model", "conversations driver", "client", "other", "wall")


@dataclass(frozen=True)
class Model:
    """How the fake model writes: words per reply, first-token delay, pause between words."""

    words: int
    first_token_delay: float
    gap: float

    @property
    def reply_seconds(self) -> float:
        return self.first_token_delay + self.words * self.gap


@dataclass(frozen=True)
class Size:
    ttft_samples: int
    ttft_model: Model
    conversations: int
    load_model: Model
    raters: int
    pairs: int
    seconds: float
    think_seconds: float
    settle_seconds: float
    conversation_think: float  # before each vote and each next message
    cost_seconds: float  # conversations alone, for the app's CPU per streamed token


# Replies of 300 words at 20 words a second (15 s), so the conversations spend almost all
# their time streaming; a rater takes 0.2 s to vote and to send the next message.
SIZES = {
    "full": Size(
        ttft_samples=300,
        ttft_model=Model(20, 0.05, 0.002),
        conversations=100,
        load_model=Model(300, 0.3, 0.05),
        raters=16,
        pairs=20_000,
        seconds=30.0,
        think_seconds=1.0,
        settle_seconds=3.0,
        conversation_think=0.2,
        cost_seconds=16.0,
    ),
    "quick": Size(
        ttft_samples=100,
        ttft_model=Model(20, 0.05, 0.002),
        conversations=100,
        load_model=Model(150, 0.3, 0.05),
        raters=16,
        pairs=3_000,
        seconds=10.0,
        think_seconds=1.0,
        settle_seconds=2.0,
        conversation_think=0.2,
        cost_seconds=8.0,
    ),
    "smoke": Size(4, Model(3, 0.0, 0.0), 3, Model(3, 0.0, 0.01), 2, 1_000, 1.0, 0.0, 0.0, 0.1, 0.5),
}


# --- the fake model as a server process ------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class FakeModel:
    """tests/conversations/fake_llm.py served by uvicorn in a process of its own."""

    def __init__(self, model: Model, log: Path) -> None:
        self.port = _free_port()
        env = {
            **os.environ,
            "FAKE_LLM_TOKENS": str(model.words),
            "FAKE_LLM_FIRST_TOKEN_DELAY": str(model.first_token_delay),
            "FAKE_LLM_GAP": str(model.gap),
        }
        argv = [sys.executable, "-m", "uvicorn", "tests.conversations.fake_llm:bench_app"]
        argv += ["--factory", "--host", "127.0.0.1", "--port", str(self.port)]
        argv += ["--log-level", "warning", "--no-access-log"]
        with log.open("wb") as sink:
            self.process = subprocess.Popen(
                argv,
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(
                        f"the fake model did not start:\n{log.read_text()}"
                    ) from None
                time.sleep(0.1)

    def stop(self) -> None:
        stop_process(self.process)


# --- data ---------------------------------------------------------------------------------


def conversation_project(url: str, slug: str, raters: int, base_url: str) -> datagen.Setup:
    """A conversation project with two endpoints on the fake model and `raters` raters."""
    setup = datagen.make_project(url, slug=slug, raters=raters)
    with psycopg.connect(url) as conn:
        conn.execute("UPDATE projects SET kind = 'conversations' WHERE id = %s", [setup.project_id])
        conn.execute(
            "INSERT INTO conversation_settings (project_id, turn_cap, opener_source) "
            "VALUES (%s, 50, 'own')",
            [setup.project_id],
        )
        for name in ("alpha", "beta"):
            endpoint_id = conn.execute(
                "INSERT INTO generation_endpoints (project_id, name, base_url, model, is_active) "
                "VALUES (%s, %s, %s, %s, true) RETURNING id",
                [setup.project_id, name, base_url, f"model-{name}"],
            ).fetchone()[0]  # type: ignore[index]
            conn.execute(
                "INSERT INTO conversation_endpoints (project_id, endpoint_id) VALUES (%s, %s)",
                [setup.project_id, endpoint_id],
            )
    return setup


def pair_project(url: str, pairs: int, raters: int) -> datagen.Setup:
    setup = datagen.make_project(url, slug="pairs", raters=raters, raters_per_pair=K, seed=1)
    with psycopg.connect(url) as conn:
        datagen.fast_load(conn)
        corpus = datagen.write_corpus(
            conn,
            setup,
            datagen.CorpusSpec(prompts=pairs, responses_per_prompt=2, models=MODELS),
            datagen.TextPool(seed=0, mean_words=80),
        )
        datagen.write_open_slots(conn, setup, corpus, K)
    return setup


# --- one turn, through pickwise or straight to the model -------------------------------


@dataclass
class Turn:
    first_text: float | None = None  # seconds from sending to the first piece of text
    texts: int = 0
    characters: int = 0
    ok: bool = False
    # Why the turn did not end ready for a vote (None when it did).
    failure: str | None = None


def _reply_failure(data: str) -> str | None:
    """'reply failed: <problem>' for a reply event of a failed reply, else None."""
    reply = json.loads(data)
    if reply.get("status") == "complete":
        return None
    problem = str(reply.get("problem") or "")
    # Numbers (ids, seconds, counts) would split one cause into many rows.
    return f"reply {reply.get('status')}: {re.sub(r'[0-9.]+', 'N', problem)[:80]}"


async def follow(client: httpx.AsyncClient, url: str, headers: dict[str, str], sent: float) -> Turn:
    turn = Turn()
    failures: list[str] = []
    async with client.stream("GET", url, headers=headers) as stream:
        if stream.status_code != 200:
            turn.failure = f"event stream answered {stream.status_code}"
            return turn
        name = ""
        async for line in stream.aiter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name in ("text", "reply"):
                # A reply written before the stream was opened comes whole, as its first text.
                if turn.first_text is None:
                    turn.first_text = time.perf_counter() - sent
                turn.texts += name == "text"
                turn.characters += len(line)
                if name == "reply" and (failed := _reply_failure(line[6:])) is not None:
                    failures.append(failed)
            elif line.startswith("data: ") and name == "done":
                turn.ok = '"can_vote":true' in line
    if not turn.ok:
        turn.failure = (
            "; ".join(sorted(failures))
            if failures
            else "the event stream ended without a vote-ready done"
        )
    return turn


async def through_pickwise(
    client: httpx.AsyncClient, project_id: int, headers: dict[str, str], message: str
) -> tuple[Turn, dict[str, Any]]:
    sent = time.perf_counter()
    reply = await client.post(
        f"/api/v1/projects/{project_id}/conversations", json={"message": message}, headers=headers
    )
    reply.raise_for_status()
    conversation = reply.json()
    turn_id = conversation["turns"][-1]["id"]
    url = f"/api/v1/conversations/{conversation['id']}/turns/{turn_id}/events"
    return await follow(client, url, headers, sent), conversation


async def straight_to_model(client: httpx.AsyncClient, base_url: str, message: str) -> Turn:
    turn = Turn()
    body = {"model": "model-alpha", "messages": [{"role": "user", "content": message}]}
    sent = time.perf_counter()
    async with client.stream(
        "POST", f"{base_url}/chat/completions", json={**body, "stream": True}
    ) as stream:
        async for line in stream.aiter_lines():
            compact = line.replace(": ", ":")
            if (
                line.startswith("data: {")
                and '"content":"' in compact
                and '"content":""' not in compact
            ):
                if turn.first_text is None:
                    turn.first_text = time.perf_counter() - sent
                turn.texts += 1
    turn.ok = True
    return turn


async def first_token_samples(
    app_url: str, model_url: str, project_id: int, token: str, samples: int
) -> tuple[list[float], list[float]]:
    headers = {"Authorization": f"Bearer {token}"}
    pickwise: list[float] = []
    direct: list[float] = []
    async with httpx.AsyncClient(base_url=app_url, timeout=60) as client:
        # Warm both paths (connections, caches) before measuring.
        for _ in range(3):
            await through_pickwise(client, project_id, headers, "warm up")
            await straight_to_model(client, model_url, "warm up")
        for number in range(samples):
            turn, _ = await through_pickwise(client, project_id, headers, f"sample {number}")
            own = await straight_to_model(client, model_url, f"sample {number}")
            if turn.first_text is None or own.first_text is None:
                raise RuntimeError("a sample got no text")
            pickwise.append(turn.first_text)
            direct.append(own.first_text)
    return pickwise, direct


# --- many conversations at once, driven from another process ---------------------------


@dataclass
class DriverStats:
    turns: int = 0
    failed_turns: int = 0
    errors: int = 0
    texts: int = 0
    characters: int = 0
    first_text: list[float] = field(default_factory=list)
    streaming: int = 0  # conversations whose replies are being followed right now
    streaming_samples: list[int] = field(default_factory=list)
    # Why turns failed and requests erred: cause → count.
    causes: dict[str, int] = field(default_factory=dict)

    def count(self, cause: str) -> None:
        self.causes[cause] = self.causes.get(cause, 0) + 1


def _error_cause(step: str, exc: Exception) -> str:
    if isinstance(exc, httpx.HTTPStatusError):
        return f"{step} answered {exc.response.status_code}"
    return f"{step}: {type(exc).__name__}"


async def _conversation(
    client: httpx.AsyncClient,
    project_id: int,
    token: str,
    deadline: float,
    think: float,
    stats: DriverStats,
    start_within: float = 0.0,
) -> None:
    """One rater's conversation, turn after turn. `start_within` > 0: the first message goes
    out at a random moment inside that many seconds, and each pause (reading, writing) is
    drawn around `think` — people do not all press send in the same half second."""
    headers = {"Authorization": f"Bearer {token}"}
    conversation: dict[str, Any] | None = None
    number = 0
    rng = random.Random(token)

    def pause() -> float:
        return rng.expovariate(1 / think) if start_within and think else think

    if start_within:
        await asyncio.sleep(rng.uniform(0, start_within))
    while time.perf_counter() < deadline:
        number += 1
        stats.streaming += 1
        following = True
        step = "starting a conversation"
        try:
            if conversation is None or conversation["status"] != "active":
                turn, conversation = await through_pickwise(
                    client, project_id, headers, f"Opening message {number}"
                )
            else:
                step = "sending a message"
                sent = time.perf_counter()
                parent = conversation["turns"][-1]["id"]
                reply = await client.post(
                    f"/api/v1/conversations/{conversation['id']}/messages",
                    json={"content": f"Message {number}", "parent_turn_id": parent},
                    headers=headers,
                )
                reply.raise_for_status()
                conversation = reply.json()
                turn_id = conversation["turns"][-1]["id"]
                url = f"/api/v1/conversations/{conversation['id']}/turns/{turn_id}/events"
                turn = await follow(client, url, headers, sent)
            stats.streaming -= 1
            following = False
            stats.turns += 1
            stats.texts += turn.texts
            stats.characters += turn.characters
            if turn.first_text is not None:
                stats.first_text.append(turn.first_text)
            if not turn.ok:
                stats.failed_turns += 1
                stats.count(f"turn: {turn.failure}")
                conversation = None
                continue
            await asyncio.sleep(pause())  # reading both replies
            step = "voting"
            last = conversation["turns"][-1]["id"]
            voted = await client.post(
                f"/api/v1/conversations/{conversation['id']}/turns/{last}/judgment",
                json={"choice": "left"},
                headers=headers,
            )
            voted.raise_for_status()
            conversation = voted.json()
            await asyncio.sleep(pause())  # writing the next message
        except (httpx.HTTPError, KeyError) as exc:
            if following:
                stats.streaming -= 1
            stats.errors += 1
            stats.count(f"error: {_error_cause(step, exc)}")
            conversation = None
            await asyncio.sleep(0.5)


async def _count_streams(stats: DriverStats, deadline: float) -> None:
    while time.perf_counter() < deadline:
        stats.streaming_samples.append(stats.streaming)
        await asyncio.sleep(0.1)


async def _drive(
    app_url: str,
    project_id: int,
    tokens: list[str],
    seconds: float,
    think: float,
    start_within: float = 0.0,
) -> DriverStats:
    stats = DriverStats()
    limits = httpx.Limits(max_connections=len(tokens) * 2, max_keepalive_connections=len(tokens))
    async with httpx.AsyncClient(base_url=app_url, timeout=120, limits=limits) as client:
        deadline = time.perf_counter() + seconds
        await asyncio.gather(
            _count_streams(stats, deadline),
            *(
                _conversation(client, project_id, token, deadline, think, stats, start_within)
                for token in tokens
            ),
        )
    return stats


def drive(
    app_url: str,
    project_id: int,
    tokens: list[str],
    seconds: float,
    think: float,
    start_within: float,
    out: Any,
) -> None:
    """The conversations' process: its results go back through `out` (a queue)."""
    stats = asyncio.run(_drive(app_url, project_id, tokens, seconds, think, start_within))
    out.put(stats.__dict__)


def _results(driver: Any, queue: Any, seconds: float) -> dict[str, Any]:
    """The driver's results, or an error as soon as it is found dead without any."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            return dict(queue.get(timeout=1.0))
        except Empty:
            if not driver.is_alive():
                raise RuntimeError("the conversations driver died; see its output") from None
    raise TimeoutError("the conversations driver did not finish")


# --- the benchmark -----------------------------------------------------------------------


def _ms(values: list[float]) -> dict[str, float | None]:
    """latency_ms with the p95 too (the target of the first-token comparison)."""
    p95 = percentile(values, 0.95)
    return {**latency_ms(values), "p95": None if p95 is None else p95 * 1000}


def run(server: Server, size_name: str, workdir: Path | None = None) -> BenchResult:
    size = SIZES[size_name]
    workdir = workdir or Path(".")
    result = BenchResult(
        name=NAME,
        size=size_name,
        params={
            "ttft_samples": size.ttft_samples,
            "ttft_model": size.ttft_model.__dict__,
            "conversations": size.conversations,
            "load_model": size.load_model.__dict__,
            "pair_raters": size.raters,
            "pairs": size.pairs,
            "seconds": size.seconds,
            "think_seconds": size.think_seconds,
            "workers": 1,
        },
        server=server.describe(),
    )
    _first_token(server, size, workdir, result)
    _under_load(server, size, workdir, result)
    return result


def _first_token(server: Server, size: Size, workdir: Path, result: BenchResult) -> None:
    url = server.create_database("conversations_ttft")
    model = FakeModel(size.ttft_model, workdir / "fake-ttft.log")
    try:
        setup = conversation_project(url, "ttft", 1, model.base_url)
        datagen.finish_load(url)
        with serve(url, workers=1, log=workdir / "serve-ttft.log") as app:
            meter = CpuMeter({"app": app.pid})
            before = meter.sample()
            pickwise, direct = asyncio.run(
                first_token_samples(
                    app.base_url,
                    model.base_url,
                    setup.project_id,
                    setup.rater_tokens[0],
                    size.ttft_samples,
                )
            )
            spent = CpuMeter.spent(before, meter.sample())
    finally:
        model.stop()
    # Each sample (and the 3 that warm up) is one turn: a message, two 20-token replies
    # followed to their end, stored.
    turn_cpu_ms = spent["app"] * 1000 / (size.ttft_samples + 3)
    through, own = _ms(pickwise), _ms(direct)
    added = (through["p95"] or 0.0) - (own["p95"] or 0.0)
    result.compare(
        "time to first token, p95 added by pickwise",
        "ms",
        added,
        own["p95"],
        "the endpoint's own p95",
        Target("value_at_most", ADDED_TTFT_TARGET_MS),
    )
    result.details.append(
        DetailTable(
            "time to first token (ms), sample for sample",
            ["path", "p50", "p95", "p99", "max", "n"],
            [
                [
                    "through pickwise",
                    through["p50"],
                    through["p95"],
                    through["p99"],
                    through["max"],
                    through["n"],
                ],
                ["straight to the model", own["p50"], own["p95"], own["p99"], own["max"], own["n"]],
            ],
        )
    )
    result.details.append(
        DetailTable(
            "app CPU per turn (message, two 20-token replies streamed and stored)",
            ["app CPU ms per turn", "turns", "app CPU s", "other jobs' CPU s", "wall s"],
            [
                [
                    turn_cpu_ms,
                    size.ttft_samples + 3,
                    spent["app"],
                    spent["other"],
                    spent["wall"],
                ]
            ],
        )
    )
    result.raw["ttft_ms"] = {"through_pickwise": through, "direct": own}
    result.raw["app_cpu_ms_per_turn"] = turn_cpu_ms


def _stream_cost(
    app_url: str, url: str, talkers: datagen.Setup, size: Size, meter: CpuMeter
) -> dict[str, Any]:
    """The app's CPU while the conversations run alone, per token the model streamed (as its
    replies' stored completion tokens count them). A turn started before the end is
    followed to its end, so every token counted was read and relayed inside the window."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM conversation_replies").fetchone()
    first_reply = int(row[0]) if row else 0
    before = meter.sample()
    stats = asyncio.run(
        _drive(
            app_url,
            talkers.project_id,
            talkers.rater_tokens,
            size.cost_seconds,
            size.conversation_think,
        )
    )
    spent = CpuMeter.spent(before, meter.sample())
    with psycopg.connect(url) as conn:
        row = conn.execute(
            "SELECT coalesce(sum(completion_tokens), 0) FROM conversation_replies WHERE id > %s",
            [first_reply],
        ).fetchone()
    tokens = int(row[0]) if row else 0
    return {
        "app_ms_per_1k_tokens": spent["app"] * 1e6 / tokens if tokens else None,
        "tokens": tokens,
        "turns": stats.turns,
        "errors": stats.errors,
        "app_cpu": spent["app"],
        "other_cpu": spent["other"],
        "wall": spent["wall"],
    }


def _under_load(server: Server, size: Size, workdir: Path, result: BenchResult) -> None:
    url = server.create_database("conversations_load")
    model = FakeModel(size.load_model, workdir / "fake-load.log")
    try:
        talkers = conversation_project(url, "talk", size.conversations, model.base_url)
        raters = pair_project(url, size.pairs, size.raters)
        datagen.finish_load(url)
        with serve(url, workers=1, log=workdir / "serve-load.log") as app:
            meter = CpuMeter(
                {"app": app.pid, "postgres": postmaster_pid(url), "fake model": model.process.pid}
            )

            cost = _stream_cost(app.base_url, url, talkers, size, meter)

            def rater_loop() -> Any:
                return asyncio.run(
                    http_run(
                        app.base_url,
                        raters.rater_tokens,
                        raters.project_id,
                        size.seconds,
                        1_000_000,
                        size.think_seconds,
                        size.settle_seconds,
                    )
                )

            before = meter.sample()
            idle = rater_loop()
            idle.cpu = CpuMeter.spent(before, meter.sample())

            context = multiprocessing.get_context("spawn")
            queue = context.Queue()
            # The conversations start spread over one reply's length, and all are streaming
            # before the raters are measured.
            spread = size.load_model.reply_seconds
            seconds = spread + size.seconds + size.settle_seconds + 2.0
            driver = context.Process(
                target=drive,
                args=(
                    app.base_url,
                    talkers.project_id,
                    talkers.rater_tokens,
                    seconds,
                    size.conversation_think,
                    spread,
                    queue,
                ),
            )
            driver.start()
            meter = CpuMeter({**meter.trees, "conversations driver": driver.pid})
            time.sleep(spread + 1.0)  # every conversation is going before the raters start
            before = meter.sample()
            loaded = rater_loop()
            loaded.cpu = CpuMeter.spent(before, meter.sample())
            talk = DriverStats(**_results(driver, queue, seconds + 120))
            driver.join(30)
    finally:
        model.stop()
    idle_ms, loaded_ms = _ms(idle.first), _ms(loaded.first)
    result.compare(
        f"next-pair p99, {size.raters} raters, while {size.conversations} conversations stream",
        "ms",
        loaded_ms["p99"],
        idle_ms["p99"],
        "the same loop, no conversations",
        Target("value_at_most", NEXT_P99_TARGET_MS),
    )
    judged_idle, judged_loaded = _ms(idle.second), _ms(loaded.second)
    rows = []
    for label, stats, first, second in (
        ("no conversations", idle, idle_ms, judged_idle),
        (f"{size.conversations} conversations", loaded, loaded_ms, judged_loaded),
    ):
        rows.append(
            [
                label,
                stats.loops,
                stats.errors,
                first["p50"],
                first["p99"],
                second["p50"],
                second["p99"],
            ]
        )
    result.details.append(
        DetailTable(
            "the pair project's rater loop on the same worker (ms)",
            ["while", "loops", "errors", "next p50", "next p99", "judgment p50", "judgment p99"],
            rows,
        )
    )
    streamed = _ms(talk.first_text)
    spread = size.load_model.reply_seconds
    window = spread + size.seconds + size.settle_seconds + 2.0
    # While the raters were measured: after the conversations' staggered start.
    at_once = talk.streaming_samples[round((spread + 1.0) * 10) :] or [0]
    result.details.append(
        DetailTable(
            "the conversations",
            [
                "streaming at once (mean)",
                "(fewest)",
                "turns",
                "failed turns",
                "errors",
                "text events/s",
                "first text p50 (ms)",
                "first text p95 (ms)",
            ],
            [
                [
                    sum(at_once) / len(at_once),
                    min(at_once),
                    talk.turns,
                    talk.failed_turns,
                    talk.errors,
                    talk.texts / window,
                    streamed["p50"],
                    streamed["p95"],
                ]
            ],
        )
    )
    causes = [
        *(("conversations", cause, n) for cause, n in talk.causes.items()),
        *(("pair raters", f"error: {what}", n) for what, n in loaded.error_statuses.items()),
    ]
    result.details.append(
        DetailTable(
            "why turns failed and requests erred while both ran",
            ["who", "cause", "count"],
            [list(row) for row in sorted(causes, key=lambda row: -row[2])] or [["-", "none", 0]],
        )
    )
    cpu_rows = [
        [label, *(round(stats.cpu.get(part, 0.0), 2) for part in CPU_PARTS)]
        for label, stats in (("no conversations", idle), ("conversations", loaded))
    ]
    result.details.append(
        DetailTable(
            "CPU seconds while the raters were measured",
            [
                "while",
                "app",
                "postgres",
                "fake model",
                "conversations driver",
                "raters",
                "other",
                "wall",
            ],
            cpu_rows,
        )
    )
    result.details.append(
        DetailTable(
            f"app CPU per streamed token: {size.conversations} conversations alone "
            f"({size.load_model.words}-token replies at {1 / size.load_model.gap:g} a second; "
            "turns, votes and storing included)",
            [
                "app CPU ms per 1,000 tokens",
                "tokens",
                "turns",
                "app CPU s",
                "other jobs' CPU s",
                "wall s",
            ],
            [
                [
                    cost["app_ms_per_1k_tokens"],
                    cost["tokens"],
                    cost["turns"],
                    cost["app_cpu"],
                    cost["other_cpu"],
                    cost["wall"],
                ]
            ],
        )
    )
    result.raw["stream_cost"] = cost
    result.raw["rater_loop"] = {"idle": idle.summary(), "loaded": loaded.summary()}
    result.raw["conversations"] = {
        **talk.__dict__,
        "first_text_ms": streamed,
        "first_text": None,
        "streaming_samples": None,
        "streaming_at_once_mean": sum(at_once) / len(at_once),
    }
