"""A start with an API token after an earlier one (same token, same project) writes its turn
in the lookup's round trip, planned from what the earlier lookup read
(`service.StartPlan`), and only if that is unchanged. Every change to what a start reads
(who asks, the membership, the settings, the endpoints, the budget) makes it start exactly
as the first one did: these tests check the planned start was tried each time and refused.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from pickwise.core.clock import utcnow
from pickwise.core.db import get_engine, session_factory
from pickwise.core.security import token_digest
from pickwise.models import (
    ApiToken,
    Conversation,
    ConversationRaterDay,
    ConversationReply,
    ConversationTurn,
    GenerationEndpoint,
    ProjectMember,
    User,
)
from tests.conversations.conftest import World, drain_generator
from tests.conversations.fake_llm import FakeLLM
from tests.conversations.test_connections import round_trips


async def _start(world: World, body: dict[str, Any] | None = None, **headers: str) -> Any:
    return await world.api.post(
        f"/api/v1/projects/{world.project_id}/conversations",
        params={"wait": False},
        json={"message": "Hi"} if body is None else body,
        headers={**world.rater, **headers},
    )


async def _count(model: Any) -> int:
    async with session_factory(get_engine())() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _replies_used(world: World) -> int:
    async with session_factory(get_engine())() as session:
        used = await session.scalar(
            select(func.sum(ConversationRaterDay.replies)).where(
                ConversationRaterDay.rater_id == world.rater_id
            )
        )
    return int(used or 0)


async def _execute(*statements: Any) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        for statement in statements:
            await session.execute(statement)


async def _latest(model: Any) -> Any:
    async with session_factory(get_engine())() as session:
        return (await session.scalars(select(model).order_by(model.id.desc()).limit(1))).one()


async def _replies_of_latest_turn() -> list[ConversationReply]:
    turn = await _latest(ConversationTurn)
    async with session_factory(get_engine())() as session:
        found = await session.scalars(
            select(ConversationReply).where(ConversationReply.turn_id == turn.id)
        )
        return list(found)


async def test_a_start_after_the_first_writes_its_turn_in_the_lookup_round_trip(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(system_prompt="Be brief.", turn_cap=3, max_tokens_per_reply=5)
    with round_trips() as first_trips:
        first = await _start(world)
    assert first.status_code == 201, first.text
    assert [len(trip) for trip in first_trips] == [2, 1]
    with round_trips() as trips:
        second = await _start(world, {"message": "  Again  "})
    assert second.status_code == 201, second.text
    # Who asks, the project and the turn: one round trip before the model is asked.
    assert [len(trip) for trip in trips] == [3], trips
    answer = second.json()
    assert answer["id"] != first.json()["id"]
    assert set(answer) == set(first.json())
    turn = answer["turns"][0]
    assert turn["user_content"] == "Again"
    assert {turn[side]["status"] for side in ("left", "right")} == {"generating"}
    await drain_generator()
    # Written as the first start's path writes it.
    conversation = await _latest(Conversation)
    assert (conversation.turn_cap, conversation.system_prompt) == (3, "Be brief.")
    stored_turn = await _latest(ConversationTurn)
    assert stored_turn.context == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Again"},
    ]
    replies = await _replies_of_latest_turn()
    assert {reply.model for reply in replies} == {"model-a", "model-b"}
    assert {reply.sampling["max_tokens"] for reply in replies} == {5}
    assert await _replies_used(world) == 4
    assert [call["messages"][0]["content"] for call in fake_llm.calls[-2:]] == ["Be brief."] * 2


def _token_of(world: World) -> str:
    return token_digest(world.rater["Authorization"].removeprefix("Bearer "))


async def _revoke_token(world: World) -> None:
    await _execute(
        update(ApiToken).where(ApiToken.token_hash == _token_of(world)).values(revoked_at=utcnow())
    )


async def _deactivate_rater(world: World) -> None:
    await _execute(update(User).where(User.id == world.rater_id).values(is_active=False))


async def _remove_membership(world: World) -> None:
    await _execute(
        delete(ProjectMember).where(
            ProjectMember.project_id == world.project_id, ProjectMember.user_id == world.rater_id
        )
    )


async def _switch_an_endpoint_off(world: World) -> None:
    await _execute(
        update(GenerationEndpoint)
        .where(GenerationEndpoint.id == world.endpoint_ids[0])
        .values(is_active=False)
    )


async def _lower_the_budget(world: World) -> None:
    await world.configure(replies_per_rater_per_day=3)


async def _openers_only(world: World) -> None:
    await world.configure(opener_source="imported")


Change = Callable[[World], Awaitable[None]]


@pytest.mark.parametrize(
    ("change", "status", "detail"),
    [
        (_revoke_token, 401, "API token"),
        (_deactivate_rater, 401, "API token"),
        (_remove_membership, 404, "no such project"),
        (_switch_an_endpoint_off, 409, "two usable chat endpoints"),
        (_lower_the_budget, 429, "3 a day"),
        (_openers_only, 422, "use_opener"),
    ],
)
async def test_a_planned_start_is_refused_as_the_first_path_refuses(
    world: World, fake_llm: FakeLLM, change: Change, status: int, detail: str
) -> None:
    await world.configure()
    assert (await _start(world)).status_code == 201  # the next start is planned
    await drain_generator()
    calls = len(fake_llm.calls)
    await change(world)
    with round_trips() as trips:
        refused = await _start(world)
    assert refused.status_code == status, refused.text
    assert detail in refused.json()["detail"]
    assert len(trips[0]) == 3, "the planned start was tried"
    # Nothing written, no model asked.
    assert await _count(Conversation) == 1 and await _count(ConversationTurn) == 1
    assert await _count(ConversationReply) == 2 and await _replies_used(world) == 2
    assert len(fake_llm.calls) == calls


async def _edit_an_endpoint(world: World) -> None:
    await _execute(
        update(GenerationEndpoint)
        .where(GenerationEndpoint.id == world.endpoint_ids[0])
        .values(model="model-c")
    )


async def _change_the_settings(world: World) -> None:
    await world.configure(turn_cap=7, max_tokens_per_reply=2, system_prompt="Now this.")


async def _add_an_endpoint(world: World) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        third = GenerationEndpoint(
            project_id=world.project_id, name="gamma", base_url="http://x.invalid", model="m"
        )
        session.add(third)
        await session.flush()
        third_id = third.id
    # Only the new endpoint and the first one; the second is no longer the project's.
    await world.api.put(
        f"/api/v1/projects/{world.project_id}/conversation-settings",
        json={"endpoint_ids": [world.endpoint_ids[0], third_id]},
        headers=world.admin,
    )


@pytest.mark.parametrize(
    ("change", "models", "turn_cap", "max_tokens", "system"),
    [
        (_edit_an_endpoint, {"model-c", "model-b"}, 5, None, None),
        (_change_the_settings, {"model-a", "model-b"}, 7, 2, "Now this."),
        (_add_an_endpoint, {"model-a", "m"}, 5, None, None),
    ],
)
async def test_a_planned_start_after_a_change_starts_from_what_is_there_now(
    world: World,
    fake_llm: FakeLLM,
    change: Change,
    models: set[str],
    turn_cap: int,
    max_tokens: int | None,
    system: str | None,
) -> None:
    await world.configure()
    assert (await _start(world)).status_code == 201
    await drain_generator()
    await change(world)
    with round_trips() as trips:
        started = await _start(world)
    assert started.status_code == 201, started.text
    # Tried as planned, refused, then the turn written from what the lookup found.
    assert [len(trip) for trip in trips] == [3, 1], trips
    conversation = await _latest(Conversation)
    assert (conversation.turn_cap, conversation.system_prompt) == (turn_cap, system)
    replies = await _replies_of_latest_turn()
    assert {reply.model for reply in replies} == models
    assert {reply.sampling.get("max_tokens") for reply in replies} == {max_tokens}
    assert await _count(Conversation) == 2 and await _replies_used(world) == 4
    await drain_generator()
    # And the start after that is planned from the new rows.
    with round_trips() as trips:
        assert (await _start(world)).status_code == 201
    assert [len(trip) for trip in trips] == [3]
    replies = await _replies_of_latest_turn()
    assert {reply.model for reply in replies} == models


async def test_a_planned_start_takes_the_last_replies_of_the_day_once(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(replies_per_rater_per_day=4)
    assert (await _start(world)).status_code == 201
    with round_trips() as trips:
        assert (await _start(world)).status_code == 201
    assert [len(trip) for trip in trips] == [3]
    with round_trips() as trips:
        refused = await _start(world)
    assert refused.status_code == 429 and "4 a day" in refused.json()["detail"]
    assert len(trips[0]) == 3
    assert await _count(Conversation) == 2 and await _replies_used(world) == 4


async def test_planned_starts_at_once_with_the_last_replies_make_one_conversation(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(replies_per_rater_per_day=4)
    assert (await _start(world)).status_code == 201  # plans the next
    starts = await asyncio.gather(*(_start(world, {"message": f"Start {n}"}) for n in range(4)))
    assert sorted(reply.status_code for reply in starts) == [201, 429, 429, 429]
    assert await _count(Conversation) == 2 and await _replies_used(world) == 4


async def test_a_start_with_a_key_or_an_odd_body_is_not_planned(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure()
    assert (await _start(world)).status_code == 201
    # The same key twice: one conversation, the same answer, charged once.
    with round_trips() as trips:
        first = await _start(world, **{"Idempotency-Key": "once"})
        again = await _start(world, **{"Idempotency-Key": "once"})
    assert (first.status_code, again.status_code) == (201, 201)
    assert first.json()["id"] == again.json()["id"]
    assert all(len(trip) < 3 for trip in trips), trips
    assert await _count(Conversation) == 2 and await _replies_used(world) == 4
    # Bodies the route refuses are refused as before, with nothing written.
    for body, field in (
        ({"message": "   "}, "message"),
        ({"use_opener": True}, "use_opener"),
        ({"message": "Hi", "extra": 1}, "extra"),
    ):
        refused = await _start(world, body)
        assert refused.status_code == 422, refused.text
        assert field in refused.text
    assert await _count(Conversation) == 2 and await _replies_used(world) == 4


async def test_an_admin_made_a_rater_is_refused_a_planned_start(
    world: World, fake_llm: FakeLLM
) -> None:
    """Admins start in any project; the plan was made while they were one."""
    await world.configure()
    assert (await _start(world, **world.admin)).status_code == 201
    admin_id = (await _latest(Conversation)).rater_id
    await _execute(update(User).where(User.id == admin_id).values(role="rater"))
    with round_trips() as trips:
        refused = await _start(world, **world.admin)
    assert refused.status_code == 404, refused.text
    assert len(trips[0]) == 3
    assert await _count(Conversation) == 1
