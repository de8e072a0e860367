"""A conversation project stays fixed k = 1: adaptive overlap would open slots on a judged
turn for other raters, so it is turned off when a project becomes one, refused by the API
and by the database."""

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from pickwise.core.db import get_engine, session_factory
from pickwise.models import PairSlot, Project
from tests.conversations.conftest import World
from tests.conversations.fake_llm import FakeLLM


async def test_an_adaptive_project_made_a_conversation_project_rates_each_turn_once(
    world: World, fake_llm: FakeLLM
) -> None:
    adaptive = await world.api.patch(
        f"/api/v1/projects/{world.project_id}",
        json={"overlap_mode": "adaptive", "overlap_min": 2, "overlap_max": 5},
        headers=world.admin,
    )
    assert adaptive.status_code == 200, adaptive.text
    await world.configure(turn_cap=3)
    project = await world.api.get(f"/api/v1/projects/{world.project_id}", headers=world.admin)
    assert project.json()["kind"] == "conversations"
    assert project.json()["overlap_mode"] == "fixed" and project.json()["raters_per_pair"] == 1

    conversation = await world.start("One")
    conversation = await world.vote(conversation, "left")
    conversation = await world.send(conversation, "Two")
    await world.vote(conversation, "right")
    async with session_factory(get_engine())() as session:
        slots = (
            await session.execute(select(PairSlot.state, func.count()).group_by(PairSlot.state))
        ).all()
        assert [tuple(row) for row in slots] == [("done", 2)]
    nothing = await world.api.get(f"/api/v1/projects/{world.project_id}/next", headers=world.other)
    assert nothing.status_code == 200 and nothing.json()["assignment_id"] is None


async def test_adaptive_overlap_is_refused_in_a_conversation_project(
    world: World, fake_llm: FakeLLM
) -> None:
    await world.configure(turn_cap=3)
    refused = await world.api.patch(
        f"/api/v1/projects/{world.project_id}",
        json={"overlap_mode": "adaptive"},
        headers=world.admin,
    )
    assert refused.status_code == 422, refused.text
    assert "conversation" in refused.json()["detail"]
    assert refused.json().get("field") == "overlap_mode", refused.json()

    async with session_factory(get_engine())() as session:
        with pytest.raises(IntegrityError, match="conversations_rated_once"):
            await session.execute(
                text("UPDATE projects SET overlap_mode = 'adaptive' WHERE id = :id"),
                {"id": world.project_id},
            )
    async with session_factory(get_engine())() as session:
        project = await session.get(Project, world.project_id)
        assert project is not None and project.overlap_mode == "fixed"
