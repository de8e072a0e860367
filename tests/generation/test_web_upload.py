"""Prompt-only files uploaded on the admin project page: answered by the endpoints, then
imported; failures shown per line with nothing imported."""

from httpx import AsyncClient, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Batch, GenerationEndpoint, Prompt
from pickwise.models import Response as Answer
from tests.factories import make_project
from tests.generation.fake_openai import FakeServer
from tests.generation.test_api_upload import body, count
from tests.web.test_admin_pages import admin_client


async def project_with_endpoints(session: AsyncSession, fake: FakeServer) -> int:
    project = await make_project(session)
    for name in ("small", "large"):
        session.add(
            GenerationEndpoint(
                project_id=project.id, name=name, base_url=fake.base_url, model=f"{name}-chat"
            )
        )
    await session.commit()  # a refused upload rolls back what is not committed
    return project.id


async def upload(client: AsyncClient, project_id: int, csrf: str, data: bytes) -> Response:
    return await client.post(
        f"/admin/projects/{project_id}/import",
        data={"csrf_token": csrf},
        files={"file": ("prompts.jsonl", data, "application/x-ndjson")},
    )


async def test_prompt_only_file_on_the_admin_page_is_answered_and_imported(
    client: AsyncClient, session: AsyncSession, fake: FakeServer
) -> None:
    _, csrf = await admin_client(client, session)
    project_id = await project_with_endpoints(session, fake)
    answer = await upload(client, project_id, csrf, body({"id": "p1", "prompt": "Hello?"}))
    assert answer.status_code == 303, answer.text
    assert "imported=" in answer.headers["location"]
    models = (
        await session.scalars(
            select(Answer.model)
            .join(Prompt, Prompt.id == Answer.prompt_id)
            .where(Prompt.project_id == project_id)
            .order_by(Answer.model)
        )
    ).all()
    assert models == ["large", "small"]
    assert len(fake.seen.calls) == 2


async def test_failed_prompts_are_listed_by_line_and_nothing_is_imported(
    client: AsyncClient, session: AsyncSession, fake: FakeServer
) -> None:
    _, csrf = await admin_client(client, session)
    project_id = await project_with_endpoints(session, fake)
    data = body({"id": "ok", "prompt": "Fine"}, {"id": "down", "prompt": "Down [always500]"})
    answer = await upload(client, project_id, csrf, data)
    assert answer.status_code == 422
    assert "nothing was imported" in answer.text
    assert "<code>responses</code>" in answer.text
    assert "HTTP 500: overloaded" in answer.text
    assert await count(session, Prompt, project_id) == 0
    assert await count(session, Batch, project_id) == 0
