"""Where a turn's database work goes: the message and its answer in one transaction of the
requests' pool, the replies' outcomes through the generation pool, every connection given
back. (Counts of transactions and statements, not times: timings live in bench/.)"""

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest.mock import patch

import aiohttp
import pytest
from fastapi import Request
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.auth import repository as auth_repository
from pickwise.conversations import repository, turn_repository, views, voting
from pickwise.conversations.deps import database_slot
from pickwise.conversations.generation import generator
from pickwise.core import db
from pickwise.core.config import get_settings
from pickwise.core.db import get_engine, get_generation_engine, session_factory
from tests.conversations.conftest import World, drain_generator
from tests.conversations.fake_llm import Behave, FakeLLM
from tests.conversations.test_pages import form_of, log_in


@dataclass
class Traffic:
    commits: int = 0
    statements: list[str] = field(default_factory=list)


@contextmanager
def traffic(engine: AsyncEngine) -> Iterator[Traffic]:
    seen = Traffic()

    def statement(conn: object, cursor: object, sql: str, *args: object) -> None:
        seen.statements.append(sql)

    def commit(conn: object) -> None:
        seen.commits += 1

    target = engine.sync_engine
    event.listen(target, "before_cursor_execute", statement)
    event.listen(target, "commit", commit)
    try:
        yield seen
    finally:
        event.remove(target, "before_cursor_execute", statement)
        event.remove(target, "commit", commit)


def stores(seen: Traffic) -> int:
    return sum(sql.lstrip().startswith("UPDATE conversation_replies") for sql in seen.statements)


async def test_a_message_is_one_transaction_and_its_replies_are_stored_apart(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure()
    conversation = await world.start("Hello")  # waits for both replies
    conversation = await world.vote(conversation, "left")
    # The replies are still being written when the answer comes.
    fake_llm.default = Behave(first_token_delay=0.2)
    with traffic(get_engine()) as requests, traffic(get_generation_engine()) as generation:
        conversation = await world.send(conversation, "And then?", wait=False)
        # Who asks, the new turn and the conversation read back: one transaction, before
        # any reply is stored.
        assert requests.commits == 1
        assert stores(requests) == 0 and stores(generation) == 0
        await drain_generator()
    turn = conversation["turns"][-1]
    assert [turn[side]["status"] for side in ("left", "right")] == ["generating"] * 2
    # Both outcomes went through the generation pool, none through the requests' pool (in
    # one statement when they ended together).
    assert stores(generation) in (1, 2) and stores(requests) == 0
    assert get_generation_engine().pool.checkedout() == 0
    read = await world.api.get(f"/api/v1/conversations/{conversation['id']}", headers=world.rater)
    stored = read.json()["turns"][-1]
    assert [stored[side]["status"] for side in ("left", "right")] == ["complete"] * 2


async def test_the_generation_pool_being_busy_delays_a_store_but_loses_nothing(
    world: World, fake_llm: FakeLLM
) -> None:
    """Every generation connection held elsewhere: the replies wait for one (and try again
    when the wait times out), while requests still get theirs."""
    await world.configure()
    engine = get_generation_engine()
    size = engine.pool.size()  # type: ignore[attr-defined]
    held = [await engine.connect() for _ in range(size)]
    try:
        conversation = await world.start("Hello", wait=False)
        await asyncio.sleep(0.3)
        turn = conversation["turns"][0]
        assert all(job.task.turn_id == turn["id"] for job in generator.jobs.values())
        assert len(generator.jobs) == 2  # finished reading, waiting to be stored
        read = await world.api.get(
            f"/api/v1/conversations/{conversation['id']}", headers=world.rater
        )
        assert read.status_code == 200
    finally:
        for connection in held:
            await connection.close()
    await drain_generator()
    read = await world.api.get(f"/api/v1/conversations/{conversation['id']}", headers=world.rater)
    stored = read.json()["turns"][0]
    assert [stored[side]["status"] for side in ("left", "right")] == ["complete"] * 2


@pytest.fixture
def one_slot(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONVERSATION_DATABASE_SLOTS", "1")
    # Fewer places in flight than the conversation requests that will wait: they must not
    # take them (the app is made after this fixture).
    monkeypatch.setenv("MAX_REQUESTS_IN_FLIGHT", "2")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.mark.usefixtures("one_slot")
async def test_conversation_requests_past_their_slots_wait_without_taking_a_connection(
    world: World, fake_llm: FakeLLM
) -> None:
    """A burst of conversation requests waits for a slot in the process, holding no pooled
    connection and no place among the requests in flight, while other requests go on; each
    goes on once a slot is free."""
    await world.configure()
    conversation = await world.start("Hello")
    url = f"/api/v1/conversations/{conversation['id']}"
    turn = conversation["turns"][0]
    waiting = []
    async with database_slot(Request({"type": "http"})):  # the only slot
        waiting.append(asyncio.create_task(world.api.get(url, headers=world.rater)))
        waiting.append(
            asyncio.create_task(
                world.api.post(
                    f"{url}/turns/{turn['id']}/judgment",
                    json={"choice": "left"},
                    headers=world.rater,
                )
            )
        )
        waiting.append(
            asyncio.create_task(
                world.api.post(
                    f"{url}/messages",
                    json={"content": "Later", "parent_turn_id": turn["id"]},
                    headers=world.rater,
                )
            )
        )
        await asyncio.sleep(0.3)
        assert not any(task.done() for task in waiting)
        assert get_engine().pool.checkedout() == 0  # type: ignore[attr-defined]
        me = await world.api.get("/api/v1/me", headers=world.rater)
        assert me.status_code == 200
    read, voted, sent = await asyncio.gather(*waiting)
    assert (read.status_code, voted.status_code, sent.status_code) == (200, 200, 201)
    assert sent.json()["turns"][-1]["user_content"] == "Later"


@contextmanager
def round_trips() -> Iterator[list[list[str]]]:
    """The statements run straight on psycopg (`core.db.run_pipelined`), grouped as they
    went out: one list per round trip."""
    seen: list[list[str]] = []
    real = db.run_pipelined

    async def recording(session: Any, calls: Any) -> Any:
        seen.append([call.sql for call, _ in calls])
        return await real(session, calls)

    with (
        patch.object(db, "run_pipelined", recording),
        patch.object(turn_repository, "run_pipelined", recording),
        patch.object(repository, "run_pipelined", recording),
        patch.object(auth_repository, "run_pipelined", recording),
    ):
        yield seen


async def test_a_new_conversation_finds_what_it_needs_in_its_first_round_trip(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure()
    with traffic(get_engine()) as requests, round_trips() as driver:
        await world.start("Hello", wait=False)
    # Who asks, and the project with its settings and switched-on endpoints, sent together
    # (with the transaction's BEGIN); then the turn (the budget and every row written, one
    # statement); then the COMMIT. Nothing through SQLAlchemy's statements.
    assert [len(trip) for trip in driver] == [2, 1], driver
    assert "api_tokens" in driver[0][0] and "conversation_settings" in driver[0][1]
    assert driver[1][0].lstrip().startswith("WITH budget AS")
    assert requests.statements == [] and requests.commits == 1
    await drain_generator()


async def test_the_replies_are_asked_for_before_the_answer_is_built(
    world: World, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rater waits for the model's first token: both requests go out (on the pool's
    kept-alive connections) as soon as the turn is committed, before the message's answer
    is built and sent."""
    await world.configure()
    order: list[object] = []

    async def body_sent(session: object, context: object, params: object) -> None:
        order.append(context)  # one context per request

    trace = aiohttp.TraceConfig()
    trace.on_request_chunk_sent.append(body_sent)
    monkeypatch.setattr(
        aiohttp, "ClientSession", functools.partial(aiohttp.ClientSession, trace_configs=[trace])
    )
    await generator.close()  # this loop's session is made again, traced
    try:
        await world.start("Warm the pool")  # two connections to the model, kept alive
        real_read = views.conversation_read

        def answer(*args: Any, **kwargs: Any) -> Any:
            order.append("answer built")
            return real_read(*args, **kwargs)

        monkeypatch.setattr(views, "conversation_read", answer)
        order.clear()
        await world.start("Hello", wait=False)
        assert "answer built" in order
        before = order[: order.index("answer built")]
        assert len({id(context) for context in before}) == 2
        await drain_generator()
    finally:
        await generator.close()


async def _commit_and_requests(
    world: World, monkeypatch: pytest.MonkeyPatch, send: Callable[[], Awaitable[object]]
) -> list[str]:
    """What happened, in order, from just before the first reply's request was written:
    COMMITs sent and answered, requests written."""
    await world.configure()
    order: list[str] = []

    async def headers_sent(session: object, context: object, params: object) -> None:
        order.append("request")

    trace = aiohttp.TraceConfig()
    trace.on_request_headers_sent.append(headers_sent)
    monkeypatch.setattr(
        aiohttp, "ClientSession", functools.partial(aiohttp.ClientSession, trace_configs=[trace])
    )
    real_commit = AsyncSession.commit

    async def commit(self: AsyncSession) -> None:
        order.append("COMMIT sent")
        await real_commit(self)
        order.append("committed")

    await generator.close()  # this loop's session is made again, traced
    try:
        await world.start("Warm the pool")  # two connections to the model, kept alive
        monkeypatch.setattr(AsyncSession, "commit", commit)
        order.clear()
        await send()
        await drain_generator()
    finally:
        await generator.close()
    first_request = order.index("request")
    return order[first_request - 1 : first_request + 3]


async def test_the_replies_are_asked_for_while_the_turn_commits(
    world: World, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The COMMIT's flush was on the path to the first token: the replies' requests go out
    once it is sent, before its answer is back."""
    seen = await _commit_and_requests(world, monkeypatch, lambda: world.start("Hello", wait=False))
    assert seen == ["COMMIT sent", "request", "request", "committed"]


async def test_the_pages_ask_for_the_replies_while_the_turn_commits(
    world: World, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same for the page's start form (a cookie, no JavaScript)."""
    api = await log_in(world)

    async def start_on_the_page() -> object:
        home = await api.get(f"/converse/{world.project_id}")
        action, hidden = form_of(home.text, 'class="start-form"')
        return await api.post(action, data={**hidden, "message": "Hello", "wait": "0"})

    seen = await _commit_and_requests(world, monkeypatch, start_on_the_page)
    assert seen == ["COMMIT sent", "request", "request", "committed"]


async def fetch(sql: str) -> list[tuple[Any, ...]]:
    async with session_factory(get_engine())() as session:
        return [tuple(row) for row in await session.execute(text(sql))]


def statement_kind(sql: str) -> str:
    kinds = {
        "FOR UPDATE OF c": "lock",  # first: a token holder's lock reads api_tokens too
        "FROM api_tokens": "who asks",
        "t.client_key =": "key",
        "ORDER BY t.depth DESC": "head",
        "FROM conversation_endpoints ce": "endpoints",
        "WITH budget AS": "turn",
        "FROM conversation_turns t": "view",
        "WITH batch AS": "pair",
        "INSERT INTO judgments": "judgment",
    }
    found = [kind for text, kind in kinds.items() if text in sql]
    return found[0] if found else " ".join(sql.split()[:3])


async def test_a_vote_writes_its_pair_and_judgment_in_two_round_trips(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(turn_cap=2)
    conversation = await world.start("Hello")
    with traffic(get_engine()) as requests, round_trips() as driver:
        conversation = await world.vote(conversation, "left")
    # Who asks; the conversation locked and read, one round trip; then the pair's rows with the
    # turn's and the conversation's changes (one statement), then the judgment. The
    # project's first vote finds no batch for judged turns: it makes it and writes again.
    assert [[statement_kind(sql) for sql in trip] for trip in driver] == [
        ["who asks"],
        ["lock", "view"],
        ["pair"],
        ["pair"],
        ["judgment"],
    ]
    assert [statement_kind(sql) for sql in requests.statements] == ["INSERT INTO batches"]
    assert requests.commits == 1

    conversation = await world.send(conversation, "And then?")
    with traffic(get_engine()) as requests, round_trips() as driver:
        conversation = await world.vote(conversation, "right", rationale="  clearer ")
    assert [[statement_kind(sql) for sql in trip] for trip in driver] == [
        ["who asks"],
        ["lock", "view"],
        ["pair"],
        ["judgment"],
    ]
    assert requests.statements == [] and requests.commits == 1
    # What the answer says is what was stored.
    assert conversation["status"] == "complete" and not conversation["can_send"]
    assert [turn["vote"]["choice"] for turn in conversation["turns"]] == ["left", "right"]
    assert conversation["turns"][1]["vote"]["rationale"] == "clearer"
    read = await world.api.get(f"/api/v1/conversations/{conversation['id']}", headers=world.rater)
    assert read.json() == conversation
    rows = await fetch(
        "SELECT t.continue_side, j.rationale, s.state, a.status,"
        " c.status, c.ended_at = t.judged_at AND t.judged_at = c.last_activity_at"
        " FROM conversation_turns t JOIN judgments j ON j.pair_id = t.pair_id"
        " JOIN conversations c ON c.id = t.conversation_id"
        " JOIN pair_slots s ON s.id = j.slot_id"
        " JOIN assignments a ON a.id = j.assignment_id ORDER BY t.depth"
    )
    [(batch,)] = await fetch("SELECT pairs_new FROM batches WHERE source = 'conversation'")
    assert rows == [
        ("left", None, "done", "submitted", "complete", False),
        ("right", "clearer", "done", "submitted", "complete", True),
    ]
    await drain_generator()
    assert batch in (1, 2)  # the second vote's count comes after its answer


async def test_judged_turns_counted_at_once_are_written_together(
    world: World, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pickwise.conversations import repository

    await world.configure()
    conversation = await world.start("Hello")
    await world.vote(conversation, "left")  # makes the batch, and counts one turn
    count = repository.count_in_batches
    written: list[dict[int, int]] = []

    async def recorded(session: Any, judged: Any) -> None:
        written.append(dict(judged))
        await count(session, judged)

    monkeypatch.setattr(repository, "count_in_batches", recorded)
    with traffic(get_generation_engine()) as generation:
        await asyncio.gather(*(voting.count_judged_turn(world.project_id) for _ in range(3)))
        await voting.count_judged_turn(world.project_id)
    # The first three in one transaction; the fourth, alone, in the next.
    assert written == [{world.project_id: 3}, {world.project_id: 1}]
    assert generation.commits == 2
    counters = await fetch(
        "SELECT prompts_new, responses_new, pairs_new FROM batches WHERE source = 'conversation'"
    )
    assert counters == [(5, 10, 5)]


async def test_an_event_stream_finds_who_asks_and_the_replies_in_one_round_trip(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure()
    conversation = await world.start("Hello")
    turn = conversation["turns"][0]
    url = f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/events"
    with traffic(get_engine()) as requests, round_trips() as driver:
        stream = await world.api.get(url, headers=world.rater)
    assert stream.status_code == 200
    assert [len(trip) for trip in driver] == [2], driver
    assert "api_tokens" in driver[0][0] and "conversation_replies r" in driver[0][1]
    assert requests.statements == []
    # Both replies, whole, as the conversation's read gives them.
    events = [block for block in stream.text.split("\n\n") if block.startswith("event: reply")]
    contents = [json.loads(block.split("data: ", 1)[1])["content"] for block in events]
    assert sorted(contents) == sorted(turn[side]["content"] for side in ("left", "right"))


async def test_a_message_finds_what_it_needs_in_one_round_trip(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure()
    conversation = await world.start("Hello")
    conversation = await world.vote(conversation, "left")
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    message = {"content": "And then?", "parent_turn_id": conversation["turns"][0]["id"]}
    headers = {**world.rater, "Idempotency-Key": "message-1"}
    with traffic(get_engine()) as requests, round_trips() as driver:
        sent = await world.api.post(url, json=message, headers=headers)
    assert sent.status_code == 201, sent.text
    # Who asks, the conversation locked, the turn of the message's key, the last turn, the
    # project's endpoints and the conversation as it is (with the transaction's BEGIN); the
    # new turn; then the COMMIT. The answer is made from what was read and written: nothing
    # is read back.
    assert [[statement_kind(sql) for sql in trip] for trip in driver] == [
        ["who asks", "lock", "key", "head", "endpoints", "view"],
        ["turn"],
    ]
    assert requests.statements == [] and requests.commits == 1
    await drain_generator()
    # …and it is the conversation as a read gives it (the replies since written).
    read = await world.api.get(f"/api/v1/conversations/{conversation['id']}", headers=world.rater)
    answered, now = sent.json(), read.json()
    for turn in (*answered["turns"], *now["turns"]):
        for side in ("left", "right"):
            turn[side] = {"attempt": turn[side]["attempt"], "side": turn[side]["side"]}
        turn.pop("can_vote", None)
    assert answered == now
    # The same message again (a reload) is answered with the turn it made.
    again = await world.api.post(url, json=message, headers=headers)
    assert [turn["id"] for turn in again.json()["turns"]] == [
        turn["id"] for turn in sent.json()["turns"]
    ]
    await drain_generator()
