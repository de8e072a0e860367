"""Conversation tests run against real commits (`live_app`): replies are written by tasks that
outlive the request and store their outcome in transactions of their own, as in production.
The models are a fake streaming server on loopback (tests/conversations/fake_llm.py)."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from httpx import ASGITransport, AsyncClient

from pickwise.conversations.generation import generator
from pickwise.core.db import get_engine, session_factory
from pickwise.models import GenerationEndpoint
from tests.conversations.fake_llm import FakeLLM, fake_llm_server
from tests.factories import PASSWORD, add_member, bearer_headers, make_project, make_user


@pytest.fixture
def fake_llm() -> Iterator[FakeLLM]:
    with fake_llm_server() as fake:
        yield fake


@dataclass
class World:
    project_id: int
    admin: dict[str, str]
    rater: dict[str, str]
    rater_id: int
    rater_email: str
    other: dict[str, str]
    endpoint_ids: list[int]
    api: AsyncClient

    async def configure(self, **settings: Any) -> dict[str, Any]:
        body = {"endpoint_ids": self.endpoint_ids, **settings}
        reply = await self.api.put(
            f"/api/v1/projects/{self.project_id}/conversation-settings",
            json=body,
            headers=self.admin,
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json())

    async def start(self, message: str, *, wait: bool = True, **headers: str) -> dict[str, Any]:
        reply = await self.api.post(
            f"/api/v1/projects/{self.project_id}/conversations",
            params={"wait": wait},
            json={"message": message},
            headers={**self.rater, **headers},
        )
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    async def send(
        self, conversation: dict[str, Any], message: str, *, wait: bool = True
    ) -> dict[str, Any]:
        reply = await self.api.post(
            f"/api/v1/conversations/{conversation['id']}/messages",
            params={"wait": wait},
            json={"content": message, "parent_turn_id": conversation["turns"][-1]["id"]},
            headers=self.rater,
        )
        assert reply.status_code == 201, reply.text
        return dict(reply.json())

    async def vote(
        self, conversation: dict[str, Any], choice: str, **fields: Any
    ) -> dict[str, Any]:
        turn = conversation["turns"][-1]
        reply = await self.api.post(
            f"/api/v1/conversations/{conversation['id']}/turns/{turn['id']}/judgment",
            json={"choice": choice, **fields},
            headers=self.rater,
        )
        assert reply.status_code == 200, reply.text
        return dict(reply.json())


async def drain_generator(seconds: float = 10.0) -> None:
    """Lets replies still being written finish before the tables are emptied."""
    async with asyncio.timeout(seconds):
        await asyncio.gather(*(job.finished.wait() for job in list(generator.jobs.values())))


@pytest.fixture
async def world(live_app: Any, fake_llm: FakeLLM) -> AsyncIterator[World]:
    async with session_factory(get_engine())() as session, session.begin():
        admin = await make_user(session, role="admin")
        rater = await make_user(session, password=PASSWORD)
        other = await make_user(session)
        project = await make_project(session, criteria=["accuracy"])
        for member in (rater, other):
            await add_member(session, project, member)
        endpoints = [
            GenerationEndpoint(
                project_id=project.id, name=name, base_url=fake_llm.base_url, model=model
            )
            for name, model in (("alpha", "model-a"), ("beta", "model-b"))
        ]
        session.add_all(endpoints)
        await session.flush()
        headers = [await bearer_headers(session, user) for user in (admin, rater, other)]
        world_ids = (project.id, rater.id, [endpoint.id for endpoint in endpoints], rater.email)
    transport = ASGITransport(app=live_app)
    async with AsyncClient(transport=transport, base_url="http://test") as api:
        yield World(
            project_id=world_ids[0],
            admin=headers[0],
            rater=headers[1],
            rater_id=world_ids[1],
            rater_email=world_ids[3],
            other=headers[2],
            endpoint_ids=world_ids[2],
            api=api,
        )
        await drain_generator()
