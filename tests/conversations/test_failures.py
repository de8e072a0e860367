"""Endpoints that fail, time out, send nothing or break off: a clear message, a retry for that
side, and nothing already chosen lost. Stopping a reply, following one after a reload."""

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from pickwise.core.clock import utcnow
from pickwise.core.config import get_settings
from pickwise.core.db import get_engine, session_factory
from pickwise.models import ConversationReply, ConversationTurn
from tests.conversations.conftest import World
from tests.conversations.fake_llm import Behave, FakeLLM


def side_of(turn: dict[str, Any], model: str) -> str:
    """Which side the model is on, from the reply text (or the failed side)."""
    for side in ("left", "right"):
        if turn[side]["content"].startswith(f"[{model}]"):
            return side
    failed = [side for side in ("left", "right") if turn[side]["status"] == "failed"]
    assert len(failed) == 1, turn
    return failed[0]


def events(body: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for block in body.split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in lines:
            found.append((lines["event"], json.loads(lines["data"])))
    return found


async def turn_events(world: World, conversation: dict[str, Any]) -> list[tuple[str, Any]]:
    turn = conversation["turns"][-1]
    reply = await world.api.get(
        f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/events",
        headers=world.rater,
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/event-stream")
    return events(reply.text)


async def retry(world: World, conversation: dict[str, Any], side: str) -> Any:
    turn = conversation["turns"][-1]
    return await world.api.post(
        f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/retry",
        params={"wait": True},
        json={"side": side},
        headers=world.rater,
    )


@pytest.mark.parametrize(
    ("behaviours", "problem"),
    [
        ([Behave(status=500)] * 3, "answered with an error"),
        ([Behave(status=401, error="bad key")], "answered with an error"),
        ([Behave(empty=True)], "empty reply"),
        ([Behave(drop_after=2)], "connection to the model's server failed"),
    ],
)
async def test_a_failed_side_says_why_and_is_retried(
    world: World, fake_llm: FakeLLM, behaviours: list[Behave], problem: str
) -> None:
    await world.configure()
    fake_llm.script("model-b", *behaviours)
    conversation = await world.start("Hello")
    turn = conversation["turns"][0]
    side = side_of(turn, "model-b")
    other = "left" if side == "right" else "right"
    assert turn[side]["status"] == "failed" and problem in turn[side]["problem"]
    assert turn[side]["can_retry"] and turn[other]["status"] == "complete"
    assert not turn["can_vote"]
    # No vote until both replies are complete; the other side's reply is kept as it was.
    early = await world.api.post(
        f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/judgment",
        json={"choice": other},
        headers=world.rater,
    )
    assert early.status_code == 409
    again = await retry(world, conversation, side)
    assert again.status_code == 200, again.text
    turn = again.json()["turns"][0]
    assert turn[side]["status"] == "complete" and turn[side]["attempt"] == 2
    assert turn[other]["attempt"] == 1 and turn["can_vote"]
    conversation = await world.vote(again.json(), side)
    assert conversation["turns"][0]["vote"]["choice"] == side
    # The admin sees the failed attempt and why.
    async with session_factory(get_engine())() as session:
        attempts = (
            await session.execute(
                ConversationReply.__table__.select().where(
                    ConversationReply.endpoint_name == "beta"
                )
            )
        ).all()
    assert sorted((row.attempt, row.status) for row in attempts) == [
        (1, "failed"),
        (2, "complete"),
    ]
    assert next(row.problem for row in attempts if row.status == "failed")


@pytest.fixture
def short_replies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CONVERSATION_REPLY_SECONDS", "1")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


async def test_a_reply_that_never_comes_times_out(
    world: World, fake_llm: FakeLLM, short_replies: None
) -> None:
    await world.configure()
    fake_llm.script("model-a", Behave(hang=True))
    conversation = await world.start("Hello")
    turn = conversation["turns"][0]
    side = side_of(turn, "model-a")
    assert "took too long" in turn[side]["problem"]
    assert (await retry(world, conversation, side)).json()["turns"][0]["can_vote"]


async def test_the_stream_follows_replies_after_a_reload(world: World, fake_llm: FakeLLM) -> None:
    await world.configure()
    fake_llm.default = Behave(gap=0.02)
    conversation = await world.start("Tell me a story about a lighthouse", wait=False)
    turn = conversation["turns"][0]
    assert {turn["left"]["status"], turn["right"]["status"]} == {"generating"}
    assert not turn["can_vote"]
    # Two tabs (or a reload) follow the same replies; neither starts a second generation.
    first, second = await asyncio.gather(
        turn_events(world, conversation), turn_events(world, conversation)
    )
    for found in (first, second):
        for side in ("left", "right"):
            text = "".join(
                data["text"] for name, data in found if name == "text" and data["side"] == side
            )
            final = next(data for name, data in found if name == "reply" and data["side"] == side)
            assert final["status"] == "complete" and text == final["content"]
        assert found[-1] == ("done", {"can_vote": True})
    assert len(fake_llm.calls) == 2
    # Opened again once written, the stream gives the replies whole at once.
    later = await turn_events(world, conversation)
    assert [name for name, _ in later] == ["reply", "reply", "done"]
    resumed = await world.api.get(
        f"/api/v1/conversations/{conversation['id']}", headers=world.rater
    )
    assert resumed.json()["turns"][0]["can_vote"]
    listed = await world.api.get(
        f"/api/v1/projects/{world.project_id}/conversations", headers=world.rater
    )
    assert [(c["id"], c["status"]) for c in listed.json()] == [(conversation["id"], "active")]


async def test_stop_keeps_what_was_written(world: World, fake_llm: FakeLLM) -> None:
    await world.configure()
    words = tuple(f" w{n}" for n in range(200))
    fake_llm.default = Behave(tokens=("Start", *words), gap=0.02)
    conversation = await world.start("Go on and on", wait=False)
    turn = conversation["turns"][0]
    await asyncio.sleep(0.3)
    stopped = await world.api.post(
        f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/stop",
        headers=world.rater,
    )
    assert stopped.status_code == 200, stopped.text
    turn = stopped.json()["turns"][0]
    for side in ("left", "right"):
        assert turn[side]["status"] == "complete"
        assert turn[side]["content"].startswith("Start w0")
        assert len(turn[side]["content"].split()) < 150
    assert turn["can_vote"]
    async with session_factory(get_engine())() as session:
        reasons = {
            row.finish_reason
            for row in (await session.execute(ConversationReply.__table__.select())).all()
        }
    assert reasons == {"stopped"}


async def test_an_endpoint_on_a_private_address_is_refused_in_production(
    world: World, fake_llm: FakeLLM, guarded: None
) -> None:
    """The endpoints point at loopback (saved before the rule applied): every call is refused
    at connection time, and the rater is told the model cannot be reached."""
    await world.configure()
    conversation = await world.start("Hello")
    turn = conversation["turns"][0]
    for side in ("left", "right"):
        assert turn[side]["status"] == "failed"
        assert "cannot be reached" in turn[side]["problem"]
    assert fake_llm.calls == []


async def test_an_outcome_that_cannot_be_stored_at_once_is_stored_later(
    world: World, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A burst of requests can hold every pooled connection until the wait for one times
    out: the finished reply is stored on a later attempt instead of being lost."""
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from pickwise.conversations import generation, repository

    monkeypatch.setattr(generation, "STORE_RETRY_SECONDS", 0.01)
    finish = repository.finish_replies
    refused: list[int] = []

    async def busy_pool_at_first(session: Any, outcomes: list[tuple[int, Any]]) -> None:
        if any(reply_id not in refused for reply_id, _ in outcomes):
            refused.extend(reply_id for reply_id, _ in outcomes if reply_id not in refused)
            raise PoolTimeout("QueuePool limit reached, connection timed out")
        await finish(session, outcomes)

    monkeypatch.setattr(repository, "finish_replies", busy_pool_at_first)
    await world.configure()
    conversation = await world.start("Hello")
    turn = conversation["turns"][0]
    assert len(refused) == 2 and turn["can_vote"]
    assert [turn[side]["status"] for side in ("left", "right")] == ["complete", "complete"]


async def test_outcomes_that_end_together_are_stored_in_one_transaction(
    world: World, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While one transaction of outcomes is being written, the outcomes that end meanwhile
    wait and go in the next one together; each is stored as it ended."""
    from pickwise.conversations import generation, repository

    finish = repository.finish_replies
    batches: list[list[int]] = []

    async def recorded(session: Any, outcomes: list[tuple[int, Any]]) -> None:
        batches.append([reply_id for reply_id, _ in outcomes])
        await finish(session, outcomes)

    monkeypatch.setattr(repository, "finish_replies", recorded)
    await world.configure()
    fake_llm.default = Behave(tokens=("Slow",), first_token_delay=30.0)
    started = [await world.start(f"Hello {n}", wait=False) for n in range(2)]
    reply_ids = []
    async with session_factory(get_engine())() as session:
        for conversation in started:
            found = await session.scalars(
                select(ConversationReply.id)
                .join(ConversationTurn, ConversationTurn.id == ConversationReply.turn_id)
                .where(ConversationTurn.conversation_id == conversation["id"])
                .order_by(ConversationReply.id)
            )
            reply_ids.extend(found)
    outcomes = {
        reply_id: {"status": "complete", "content": f"reply {reply_id}", "finished_at": utcnow()}
        for reply_id in reply_ids
    }
    stored = await asyncio.gather(
        *(generation.generator._store(reply_id, values) for reply_id, values in outcomes.items())
    )
    assert stored == [True] * 4
    assert batches == [reply_ids]
    async with session_factory(get_engine())() as session:
        rows = await session.execute(
            select(ConversationReply.id, ConversationReply.status, ConversationReply.content).where(
                ConversationReply.id.in_(reply_ids)
            )
        )
        assert {row.id: (row.status, row.content) for row in rows} == {
            reply_id: ("complete", values["content"]) for reply_id, values in outcomes.items()
        }
    for job in list(generation.generator.jobs.values()):
        job.stop()


async def test_a_turn_whose_commit_fails_asks_for_nothing_more_and_stores_nothing(
    world: World, fake_llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The replies' requests go out while the turn's COMMIT is written: when it fails they
    are cancelled, no job is left, and nothing of theirs is stored or charged."""
    from sqlalchemy.exc import OperationalError
    from sqlalchemy.ext.asyncio import AsyncSession

    from pickwise.conversations.generation import generator

    await world.configure()
    fake_llm.default = Behave(first_token_delay=0.3)
    real_commit = AsyncSession.commit

    async def lost_commit(self: AsyncSession) -> None:
        monkeypatch.setattr(AsyncSession, "commit", real_commit)  # only the turn's
        await self.rollback()
        raise OperationalError("COMMIT", {}, Exception("the server closed the connection"))

    monkeypatch.setattr(AsyncSession, "commit", lost_commit)
    refused = await world.api.post(
        f"/api/v1/projects/{world.project_id}/conversations",
        params={"wait": False},
        json={"message": "Hello"},
        headers=world.rater,
    )
    assert refused.status_code == 503, refused.text
    assert generator.jobs == {}
    await asyncio.sleep(0.5)  # past the model's first token: the requests were cancelled
    assert generator.jobs == {} and fake_llm.finished == 0
    async with session_factory(get_engine())() as session:
        assert (await session.scalars(select(ConversationReply.id))).all() == []
    # The rater's next message is answered as usual.
    conversation = await world.start("Hello again")
    assert [conversation["turns"][0][side]["status"] for side in ("left", "right")] == [
        "complete",
        "complete",
    ]
