"""Making a conversation project, importing openers, and who may see what."""

import json
from typing import Any

from sqlalchemy import delete, inspect, select, update

from pickwise.auth import service as auth_service
from pickwise.auth.deps import INVALID_API_TOKEN
from pickwise.conversations import repository, turn_repository
from pickwise.core.clock import utcnow
from pickwise.core.db import get_engine, session_factory
from pickwise.core.security import token_digest
from pickwise.models import ApiToken, Batch, GenerationEndpoint, Project, ProjectMember, User
from pickwise.vocabulary import AccountRole
from tests.conversations.conftest import World, drain_generator
from tests.conversations.fake_llm import FakeLLM
from tests.factories import add_member, bearer_headers, make_pairs, make_project, make_user


def jsonl(*records: dict[str, Any]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode()


async def import_file(world: World, body: bytes) -> Any:
    return await world.api.post(
        f"/api/v1/projects/{world.project_id}/batches",
        params={"filename": "openers.jsonl"},
        content=body,
        headers=world.admin,
    )


async def test_settings_are_checked(world: World, fake_llm: FakeLLM) -> None:
    url = f"/api/v1/projects/{world.project_id}/conversation-settings"
    before = await world.api.get(url, headers=world.admin)
    assert before.status_code == 409
    one = await world.api.put(
        url, json={"endpoint_ids": world.endpoint_ids[:1] * 2}, headers=world.admin
    )
    assert one.status_code == 422 and "two different" in one.json()["detail"]
    foreign = await world.api.put(
        url, json={"endpoint_ids": [world.endpoint_ids[0], 999_999]}, headers=world.admin
    )
    assert foreign.status_code == 422 and "999999" in foreign.json()["detail"]
    forbidden = await world.api.put(
        url, json={"endpoint_ids": world.endpoint_ids}, headers=world.rater
    )
    assert forbidden.status_code == 403
    saved = await world.configure(turn_cap=3, opener_source="both", replies_per_rater_per_day=10)
    assert saved["turn_cap"] == 3 and sorted(saved["endpoint_ids"]) == sorted(world.endpoint_ids)
    project = await world.api.get(f"/api/v1/projects/{world.project_id}", headers=world.admin)
    assert project.json()["kind"] == "conversations" and project.json()["raters_per_pair"] == 1


async def test_a_project_with_imported_pairs_stays_a_pair_project(
    world: World, fake_llm: FakeLLM
) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session)
        await make_pairs(session, project, 2)
        session.add_all(
            GenerationEndpoint(project_id=project.id, name=n, base_url=fake_llm.base_url, model=n)
            for n in ("x", "y")
        )
        await session.flush()
        ids = list(
            await session.scalars(
                select(GenerationEndpoint.id).where(GenerationEndpoint.project_id == project.id)
            )
        )
    refused = await world.api.put(
        f"/api/v1/projects/{project.id}/conversation-settings",
        json={"endpoint_ids": ids},
        headers=world.admin,
    )
    assert refused.status_code == 409 and "imported pairs" in refused.json()["detail"]
    not_here = await world.api.post(
        f"/api/v1/projects/{project.id}/conversations", json={"message": "Hi"}, headers=world.admin
    )
    assert not_here.status_code == 409


async def test_openers_are_imported_and_dealt(world: World, fake_llm: FakeLLM) -> None:
    await world.configure(opener_source="imported", system_prompt="Project prompt.")
    bad = await import_file(
        world,
        jsonl(
            {"id": "o1", "prompt": "Fine"},
            {"id": "o2", "prompt": "Hi", "responses": [{"content": "x"}, {"content": "y"}]},
            {"id": "conversation:1:turn:1", "prompt": "Mine"},
            {"id": "o1", "prompt": "Again"},
            {"id": "o5"},
        ),
    )
    assert bad.status_code == 422
    problems = {(e["line"], e["field"]) for e in bad.json()["errors"]}
    assert problems == {(2, None), (3, "id"), (4, "id"), (5, None)}
    good = jsonl(
        {"id": "trip", "prompt": "Help me plan a trip to Lisbon."},
        {
            "id": "tutor",
            "messages": [
                {"role": "system", "content": "You are a maths tutor."},
                {"role": "user", "content": "What is a prime?"},
                {"role": "assistant", "content": "A number with exactly two divisors."},
                {"role": "user", "content": "Is 1 prime?"},
            ],
        },
    )
    imported = await import_file(world, good)
    assert imported.status_code == 201, imported.text
    assert imported.json()["prompts_new"] == 2
    assert (await import_file(world, good)).json()["prompts_unchanged"] == 2

    own = await world.api.post(
        f"/api/v1/projects/{world.project_id}/conversations",
        json={"message": "My own"},
        headers=world.rater,
    )
    assert own.status_code == 422
    url = f"/api/v1/projects/{world.project_id}/conversations"
    first = await world.api.post(
        url, params={"wait": True}, json={"use_opener": True}, headers=world.rater
    )
    second = await world.api.post(
        url, params={"wait": True}, json={"use_opener": True}, headers=world.rater
    )
    third = await world.api.post(url, json={"use_opener": True}, headers=world.rater)
    assert first.status_code == second.status_code == 201 and third.status_code == 409
    assert first.json()["turns"][0]["user_content"] == "Help me plan a trip to Lisbon."
    assert first.json()["system_prompt"] == "Project prompt."
    tutor = second.json()
    assert tutor["system_prompt"] == "You are a maths tutor."
    assert tutor["prefix"] == [
        {"role": "user", "content": "What is a prime?"},
        {"role": "assistant", "content": "A number with exactly two divisors."},
    ]
    assert tutor["turns"][0]["user_content"] == "Is 1 prime?"
    assert fake_llm.calls[-1]["messages"] == [
        {"role": "system", "content": "You are a maths tutor."},
        {"role": "user", "content": "What is a prime?"},
        {"role": "assistant", "content": "A number with exactly two divisors."},
        {"role": "user", "content": "Is 1 prime?"},
    ]
    # Another rater is dealt the least used opener first.
    theirs = await world.api.post(url, json={"use_opener": True}, headers=world.other)
    assert theirs.json()["turns"][0]["user_content"] == "Help me plan a trip to Lisbon."
    async with session_factory(get_engine())() as session:
        sources = sorted((await session.scalars(select(Batch.source))).all())
    assert sources == ["api", "api"]


async def test_a_conversation_is_its_raters_alone(world: World, fake_llm: FakeLLM) -> None:
    await world.configure()
    conversation = await world.start("Private")
    turn = conversation["turns"][0]
    base = f"/api/v1/conversations/{conversation['id']}"
    for method, path, body in (
        ("GET", "", None),
        ("POST", "/messages", {"content": "x"}),
        ("POST", f"/turns/{turn['id']}/judgment", {"choice": "left"}),
        ("PUT", f"/turns/{turn['id']}/edit", {"content": "x"}),
        ("POST", f"/turns/{turn['id']}/retry", {"side": "left"}),
        ("POST", f"/turns/{turn['id']}/stop", None),
        ("GET", f"/turns/{turn['id']}/events", None),
        ("POST", "/end", None),
    ):
        reply = await world.api.request(method, base + path, json=body, headers=world.other)
        assert reply.status_code == 404, (method, path, reply.text)
    unauthenticated = await world.api.get(base)
    assert unauthenticated.status_code == 401
    events = f"{base}/turns/{turn['id']}/events"
    assert (await world.api.get(events)).status_code == 401
    nonsense = await world.api.get(events, headers={"Authorization": "Bearer pw_nonsense"})
    assert nonsense.status_code == 401 and nonsense.json()["detail"] == INVALID_API_TOKEN
    elsewhere = f"/api/v1/conversations/{conversation['id'] + 1}/turns/{turn['id']}/events"
    assert (await world.api.get(elsewhere, headers=world.rater)).status_code == 404
    assert (await world.api.get(events, headers=world.rater)).status_code == 200
    ended = await world.api.post(base + "/end", headers=world.rater)
    assert ended.json()["status"] == "ended"
    after = await world.api.post(base + "/messages", json={"content": "More"}, headers=world.rater)
    assert after.status_code == 409


async def revoke_and_expire(revoked: dict[str, str], expired: dict[str, str]) -> None:
    """Revokes the first API token and lets the second expire."""
    async with session_factory(get_engine())() as session, session.begin():
        for headers, column in ((revoked, "revoked_at"), (expired, "expires_at")):
            digest = token_digest(headers["Authorization"].removeprefix("Bearer "))
            await session.execute(
                update(ApiToken).where(ApiToken.token_hash == digest).values({column: utcnow()})
            )


async def _start_as(world: World, headers: dict[str, str], project_id: int | None = None) -> Any:
    return await world.api.post(
        f"/api/v1/projects/{project_id or world.project_id}/conversations",
        params={"wait": False},
        json={"message": "Hi"},
        headers=headers,
    )


async def test_who_may_start_is_checked_with_the_project(world: World, fake_llm: FakeLLM) -> None:
    """A start with an API token finds who asks and the project in one round trip
    (`turn_repository.starter`): every way a token or a project can be refused still is."""
    url = f"/api/v1/projects/{world.project_id}/conversations"
    assert (await _start_as(world, world.rater)).status_code == 409  # not a conversation project
    await world.configure()
    async with session_factory(get_engine())() as session, session.begin():
        outsider = await make_user(session)
        stopped_user = await make_user(session)
        await add_member(session, await session.get_one(Project, world.project_id), stopped_user)
        outsider_headers = await bearer_headers(session, outsider)
        stopped_headers = await bearer_headers(session, stopped_user)
        revoked_headers = await bearer_headers(session, stopped_user)
        expired_headers = await bearer_headers(session, stopped_user)
        other_project = await make_project(session)
    await revoke_and_expire(revoked_headers, expired_headers)
    for headers in (revoked_headers, expired_headers, {"Authorization": "Bearer pw_nonsense"}):
        refused = await _start_as(world, headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == INVALID_API_TOKEN
    assert (await _start_as(world, outsider_headers)).status_code == 404  # not a member
    assert (await _start_as(world, world.rater, other_project.id)).status_code == 404
    assert (await _start_as(world, world.admin, 999_999)).status_code == 404
    assert (await _start_as(world, world.admin)).status_code == 201  # admins need no membership
    assert (await _start_as(world, stopped_headers)).status_code == 201
    async with session_factory(get_engine())() as session, session.begin():
        await session.execute(
            update(User).where(User.id == stopped_user.id).values(is_active=False)
        )
    assert (await _start_as(world, stopped_headers)).status_code == 401
    # With one endpoint switched off the project has one usable endpoint left: none start.
    async with session_factory(get_engine())() as session, session.begin():
        await session.execute(
            update(GenerationEndpoint)
            .where(GenerationEndpoint.id == world.endpoint_ids[0])
            .values(is_active=False)
        )
    assert (await _start_as(world, world.rater)).status_code == 409
    assert (await world.api.post(url, json={"message": "Hi"})).status_code == 401


async def test_who_may_send_a_message_is_checked_with_the_conversation(
    world: World, fake_llm: FakeLLM
) -> None:
    """A message with an API token finds who asks and its conversation in one round trip
    (`repository.message_context_of_token`): every way a token or a rater can be refused
    still is, and an admin need not be a member (but the conversation must be theirs)."""
    await world.configure()
    conversation = await world.vote(await world.start("Hello"), "left")
    url = f"/api/v1/conversations/{conversation['id']}/messages"

    # Only the last message below is taken: the conversation waits for it as it is.
    message = {"content": "And?", "parent_turn_id": conversation["turns"][-1]["id"]}

    async def send(headers: dict[str, str]) -> Any:
        return await world.api.post(url, params={"wait": False}, json=message, headers=headers)

    async with session_factory(get_engine())() as session, session.begin():
        outsider = await make_user(session)
        outsider_headers = await bearer_headers(session, outsider)
        revoked_headers = await bearer_headers(session, outsider)
        rater = await session.get_one(User, world.rater_id)
        expired_headers = await bearer_headers(session, rater)
    await revoke_and_expire(revoked_headers, expired_headers)
    for headers in (revoked_headers, expired_headers, {"Authorization": "Bearer pw_nonsense"}):
        refused = await send(headers)
        assert refused.status_code == 401, refused.text
        assert refused.json()["detail"] == INVALID_API_TOKEN
    assert (await send(outsider_headers)).status_code == 404
    assert (await send(world.admin)).status_code == 404  # not the admin's conversation
    assert (await send({})).status_code == 401
    async with session_factory(get_engine())() as session, session.begin():
        await session.execute(
            delete(ProjectMember).where(
                ProjectMember.project_id == world.project_id,
                ProjectMember.user_id == world.rater_id,
            )
        )
    assert (await send(world.rater)).status_code == 404  # no longer a member
    async with session_factory(get_engine())() as session, session.begin():
        await session.execute(
            update(User).where(User.id == world.rater_id).values(role=AccountRole.ADMIN)
        )
    assert (await send(world.rater)).status_code == 201  # admins need no membership
    await drain_generator()


async def test_the_start_lookup_reads_what_the_orm_reads(world: World, fake_llm: FakeLLM) -> None:
    """The start's own statements (plain rows made into objects) give the user, project,
    settings and endpoints the ORM's queries give, attribute for attribute."""
    await world.configure(system_prompt="Be brief.", temperature=0.5, max_tokens_per_reply=64)
    token = world.rater["Authorization"].removeprefix("Bearer ")
    async with session_factory(get_engine())() as session:
        found = await turn_repository.starter(
            session, token_digest(token), utcnow(), world.project_id
        )
        await session.rollback()
        user = await auth_service.user_from_api_token(session, token)
        assert user is not None and found.user is not None and found.project is not None
        loaded = await repository.rater_project(session, world.project_id, user.id, False)
        assert loaded is not None
        pairs = [
            (found.user, user),
            (found.project.project, loaded.project),
            (found.project.settings, loaded.settings),
            *zip(found.project.endpoints, loaded.endpoints, strict=True),
        ]
        assert len(found.project.endpoints) == 2
        for made, read in pairs:
            attributes = [prop.key for prop in inspect(type(read)).column_attrs]
            assert {a: getattr(made, a) for a in attributes} == {
                a: getattr(read, a) for a in attributes
            }
