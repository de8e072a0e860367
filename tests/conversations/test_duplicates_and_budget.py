"""Reloads, double submits and two tabs never make a second turn, conversation or vote; the
daily reply budget holds under concurrency; max tokens per reply reach the endpoint."""

import asyncio
from typing import Any

from sqlalchemy import func, select

from pickwise.core.db import get_engine, session_factory
from pickwise.models import (
    Assignment,
    Conversation,
    ConversationRaterDay,
    ConversationReply,
    ConversationTurn,
    Judgment,
    Pair,
    Prompt,
)
from tests.conversations.conftest import World
from tests.conversations.fake_llm import FakeLLM


async def count(model: Any) -> int:
    async with session_factory(get_engine())() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_duplicate_submits_make_one_turn(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(turn_cap=5)
    start = [
        world.api.post(
            f"/api/v1/projects/{world.project_id}/conversations",
            params={"wait": True},
            json={"message": "Hi"},
            headers={**world.rater, "Idempotency-Key": "start-1"},
        )
        for _ in range(3)
    ]
    started = await asyncio.gather(*start)
    assert {reply.status_code for reply in started} == {201}
    assert len({reply.json()["id"] for reply in started}) == 1
    conversation = started[0].json()
    assert await count(Conversation) == 1 and len(fake_llm.calls) == 2

    # The same vote twice stores one judgment; another choice afterwards is refused.
    votes = await asyncio.gather(*(world.vote(conversation, "left") for _ in range(2)))
    assert votes[0]["turns"][0]["vote"] == votes[1]["turns"][0]["vote"]
    turn = conversation["turns"][0]
    other = await world.api.post(
        f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/judgment",
        json={"choice": "right"},
        headers=world.rater,
    )
    assert other.status_code == 409
    assert await count(Judgment) == 1
    conversation = votes[0]

    # A double click (same key, at once), then a reload that posts again (same key later).
    message = {"content": "Next", "parent_turn_id": turn["id"]}
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    headers = {**world.rater, "Idempotency-Key": "message-1"}
    sent = await asyncio.gather(
        *(
            world.api.post(url, params={"wait": True}, json=message, headers=headers)
            for _ in range(2)
        )
    )
    assert {reply.status_code for reply in sent} == {201}
    again = await world.api.post(url, json=message, headers=headers)
    assert again.status_code == 201
    assert {len(reply.json()["turns"]) for reply in (*sent, again)} == {2}
    # The same key for another message is a mistake, said so.
    misuse = await world.api.post(url, json={**message, "content": "Else"}, headers=headers)
    assert misuse.status_code == 422
    # A second tab, with the page from before this message, cannot add a turn after turn 1.
    stale = await world.api.post(
        url,
        json={"content": "From the other tab", "parent_turn_id": turn["id"]},
        headers=world.rater,
    )
    assert stale.status_code == 409 and "moved on" in stale.json()["detail"]
    # The same text sent again without a key (a form re-sent) lands on the turn it made.
    resent = await world.api.post(url, json=message, headers=world.rater)
    assert resent.status_code == 201 and len(resent.json()["turns"]) == 2
    assert await count(ConversationTurn) == 2 and len(fake_llm.calls) == 4


async def test_two_tabs_sending_at_once_make_one_turn(world: World, fake_llm: FakeLLM) -> None:
    await world.configure()
    conversation = await world.vote(await world.start("Hi"), "left")
    parent = conversation["turns"][0]["id"]
    url = f"/api/v1/conversations/{conversation['id']}/messages"
    replies = await asyncio.gather(
        *(
            world.api.post(
                url, json={"content": f"Tab {n}", "parent_turn_id": parent}, headers=world.rater
            )
            for n in range(4)
        )
    )
    assert sorted(reply.status_code for reply in replies) == [201, 409, 409, 409]
    assert await count(ConversationTurn) == 2


async def test_the_daily_budget_holds(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(replies_per_rater_per_day=5)
    first = await world.start("One")
    first = await world.vote(first, "left")
    second = await world.start("Two")  # 4 replies used
    second = await world.vote(second, "left")
    refused = await world.api.post(
        f"/api/v1/conversations/{first['id']}/messages",
        json={"content": "More", "parent_turn_id": first["turns"][0]["id"]},
        headers=world.rater,
    )
    assert refused.status_code == 429
    assert "5 a day" in refused.json()["detail"]
    # Nothing was half made, and no endpoint was called for it.
    assert await count(ConversationTurn) == 2 and len(fake_llm.calls) == 4
    # The other rater has a budget of their own.
    theirs = await world.api.post(
        f"/api/v1/projects/{world.project_id}/conversations",
        json={"message": "Mine"},
        headers=world.other,
    )
    assert theirs.status_code == 201


async def test_the_last_replies_of_the_day_go_to_one_request(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(replies_per_rater_per_day=2)
    starts = await asyncio.gather(
        *(
            world.api.post(
                f"/api/v1/projects/{world.project_id}/conversations",
                json={"message": f"Start {n}"},
                headers=world.rater,
            )
            for n in range(5)
        )
    )
    assert sorted(reply.status_code for reply in starts) == [201, 429, 429, 429, 429]
    assert await count(Conversation) == 1


async def test_max_tokens_per_reply_reaches_the_endpoint(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(max_tokens_per_reply=3, temperature=0.3)
    conversation = await world.start("Please write a long answer about the sea")
    assert {call["max_tokens"] for call in fake_llm.calls} == {3}
    assert {call["temperature"] for call in fake_llm.calls} == {0.3}
    for side in ("left", "right"):
        assert len(conversation["turns"][0][side]["content"].split()) == 3


async def test_a_replayed_start_takes_no_budget_and_a_refused_one_writes_nothing(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(replies_per_rater_per_day=2)
    url = f"/api/v1/projects/{world.project_id}/conversations"
    headers = {**world.rater, "Idempotency-Key": "start-once"}
    first = await world.api.post(url, json={"message": "Hi"}, headers=headers)
    assert first.status_code == 201
    # The day's two replies are taken; the same start again is answered, not charged.
    again = await world.api.post(url, json={"message": "Hi"}, headers=headers)
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]
    async with session_factory(get_engine())() as session:
        used = await session.scalar(select(func.sum(ConversationRaterDay.replies)))
    assert used == 2
    # A new start over the budget leaves no conversation, turn or reply behind.
    refused = await world.api.post(url, json={"message": "More"}, headers=world.rater)
    assert refused.status_code == 429
    assert await count(Conversation) == 1 and await count(ConversationTurn) == 1
    assert await count(ConversationReply) == 2 and len(fake_llm.calls) == 2


async def test_a_refused_vote_writes_nothing_and_its_key_answers_the_same(
    world: World, fake_llm: FakeLLM
) -> None:
    """The project closed while the replies were read: the vote is refused before anything
    of its pair is written, and the same request again (same key) gets the same answer."""
    await world.configure()
    conversation = await world.start("Hello")
    closed = await world.api.patch(
        f"/api/v1/projects/{world.project_id}", json={"is_archived": True}, headers=world.admin
    )
    assert closed.status_code == 200, closed.text
    turn = conversation["turns"][0]
    url = f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/judgment"
    headers = {**world.rater, "Idempotency-Key": "vote-1"}
    refused = [await world.api.post(url, json={"choice": "left"}, headers=headers) for _ in "ab"]
    assert [reply.status_code for reply in refused] == [409, 409]
    assert refused[0].json() == refused[1].json() and "closed" in refused[0].json()["detail"]
    assert [await count(model) for model in (Judgment, Pair, Prompt, Assignment)] == [0] * 4

    reopened = await world.api.patch(
        f"/api/v1/projects/{world.project_id}", json={"is_archived": False}, headers=world.admin
    )
    assert reopened.status_code == 200, reopened.text
    voted = await world.vote(conversation, "right")
    assert voted["turns"][0]["vote"]["choice"] == "right"
    assert [await count(model) for model in (Judgment, Pair, Prompt, Assignment)] == [1] * 4
