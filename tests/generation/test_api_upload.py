"""Prompt-only files uploaded through the batches API: answered by the endpoints, then imported."""

import json
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.config import get_settings
from pickwise.models import Batch, GenerationEndpoint, Prompt, Response
from tests.factories import bearer_headers, make_project, make_user
from tests.generation.fake_openai import FakeServer


def body(*records: dict[str, Any]) -> bytes:
    return b"".join(json.dumps(record).encode() + b"\n" for record in records)


async def setup(
    client: AsyncClient, session: AsyncSession, fake: FakeServer, endpoints: int = 2
) -> tuple[int, dict[str, str]]:
    """The project's id (a refused upload rolls back and expires the objects) and headers."""
    project = await make_project(session)
    for name in ("small", "large")[:endpoints]:
        session.add(
            GenerationEndpoint(
                project_id=project.id,
                name=name,
                base_url=fake.base_url,
                model=f"{name}-chat",
                temperature=0.3,
            )
        )
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    await session.commit()  # a refused upload rolls back what is not committed
    return project.id, headers


async def upload(
    client: AsyncClient, app: FastAPI, project_id: int, headers: dict[str, str], content: bytes
) -> Any:
    return await client.post(
        app.url_path_for("import_batch", project_id=str(project_id)),
        params={"filename": "prompts.jsonl"},
        content=content,
        headers={**headers, "Content-Type": "application/x-ndjson"},
    )


async def count(session: AsyncSession, model: type[Prompt] | type[Batch], project_id: int) -> int:
    statement = select(func.count()).select_from(model).where(model.project_id == project_id)
    return int(await session.scalar(statement) or 0)


async def test_prompt_only_upload_is_answered_by_every_endpoint_and_imported(
    client: AsyncClient, app: FastAPI, session: AsyncSession, fake: FakeServer
) -> None:
    project_id, headers = await setup(client, session, fake)
    content = body(
        {"id": "p1", "prompt": "Tell me a joke"},
        {"id": "p2", "prompt": "Flaky [500x1]", "system": "Be brief."},
        {
            "id": "ready",
            "prompt": "Already answered",
            "responses": [{"model": "a", "content": "A"}, {"model": "b", "content": "B"}],
        },
    )
    answer = await upload(client, app, project_id, headers, content)
    assert answer.status_code == 201, answer.text
    result = answer.json()
    assert result["prompts_new"] == 3 and result["pairs_new"] == 3
    assert len(fake.seen.calls) == 6  # two endpoints x two prompts, and p2 once more each
    responses = (
        await session.execute(
            select(Prompt.external_id, Response.model, Response.content, Response.metadata_)
            .join(Prompt, Prompt.id == Response.prompt_id)
            .where(Prompt.project_id == project_id)
            .order_by(Prompt.external_id, Response.model)
        )
    ).all()
    by_prompt = {(row[0], row[1]): row for row in responses}
    assert set(by_prompt) == {
        ("p1", "large"), ("p1", "small"), ("p2", "large"), ("p2", "small"),
        ("ready", "a"), ("ready", "b"),
    }  # fmt: skip
    _, _, content_p1, metadata = by_prompt[("p1", "small")]
    assert content_p1 == "small-chat (t=0.3) answers: Tell me a joke"
    assert metadata["generation"]["model"] == "small-chat"
    assert metadata["generation"]["settings"] == {"temperature": 0.3}
    assert metadata["generation"]["base_url"] == fake.base_url

    again = await upload(client, app, project_id, headers, content)
    # Nothing to generate, and the ready line is already there: nothing new, no batch.
    assert again.status_code == 200, again.text
    assert again.json()["nothing_new"] is True and again.json()["batch_id"] is None
    assert again.json()["prompts_new"] == 0 and len(fake.seen.calls) == 6


async def test_a_prompt_without_all_its_answers_imports_nothing_and_is_listed(
    client: AsyncClient, app: FastAPI, session: AsyncSession, fake: FakeServer
) -> None:
    project_id, headers = await setup(client, session, fake)
    content = body(
        {"id": "ok", "prompt": "Fine"},
        {"id": "down", "prompt": "Down [always500]"},
    )
    answer = await upload(client, app, project_id, headers, content)
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert "1 prompt(s) got no complete set of answers" in error["detail"]
    assert error["error_count"] == 1
    [failure] = error["errors"]
    assert failure["line"] == 2 and failure["field"] == "responses"
    assert "HTTP 500: overloaded" in failure["message"] and "3 attempts" in failure["message"]
    assert await count(session, Prompt, project_id) == 0
    assert await count(session, Batch, project_id) == 0


async def test_bad_lines_and_oversized_files_are_refused_before_any_call(
    client: AsyncClient,
    app: FastAPI,
    session: AsyncSession,
    fake: FakeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project_id, headers = await setup(client, session, fake)
    bad = await upload(
        client, app, project_id, headers, body({"id": "p1", "prompt": "x"}, {"id": "p2"})
    )
    assert bad.status_code == 422
    assert [e["line"] for e in bad.json()["errors"]] == [2], bad.json()
    assert "no endpoint was called" in bad.json()["detail"]

    monkeypatch.setenv("GENERATION_MAX_PROMPTS_PER_UPLOAD", "2")
    get_settings.cache_clear()
    try:
        prompts = [{"id": f"p{n}", "prompt": f"Question {n}"} for n in range(3)]
        too_many = await upload(client, app, project_id, headers, body(*prompts))
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
    assert too_many.status_code == 422
    assert "more than 2 prompts without responses" in too_many.json()["detail"]
    assert "pickwise generate" in too_many.json()["detail"]
    assert fake.seen.calls == []
    assert await count(session, Prompt, project_id) == 0


async def test_missing_keys_and_single_endpoints_are_clear_errors(
    client: AsyncClient, app: FastAPI, session: AsyncSession, fake: FakeServer
) -> None:
    project_id, headers = await setup(client, session, fake, endpoints=1)
    one = await upload(client, app, project_id, headers, body({"id": "p1", "prompt": "x"}))
    assert one.status_code == 422 and "one active endpoint" in one.json()["detail"]
    keyed = GenerationEndpoint(
        project_id=project_id,
        name="keyed",
        base_url=fake.base_url,
        model="needs-key",
        api_key_env="PICKWISE_TEST_UNSET_API_KEY",
    )
    session.add(keyed)
    await session.commit()
    missing = await upload(client, app, project_id, headers, body({"id": "p1", "prompt": "x"}))
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith("api_key_env: endpoint keyed:")
    assert missing.json()["field"] == "api_key_env"
    assert "PICKWISE_TEST_UNSET_API_KEY" in missing.json()["detail"]
    assert fake.seen.calls == []


async def test_projects_without_endpoints_import_as_before(
    client: AsyncClient, app: FastAPI, session: AsyncSession, fake: FakeServer
) -> None:
    project_id, headers = await setup(client, session, fake, endpoints=0)
    refused = await upload(client, app, project_id, headers, body({"id": "p1", "prompt": "x"}))
    assert refused.status_code == 422 and "needs responses" in refused.text
    assert fake.seen.calls == []
