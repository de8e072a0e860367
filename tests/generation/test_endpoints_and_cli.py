"""Chat endpoints through the API, and `pickwise generate` end to end."""

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.db import get_engine, session_factory
from pickwise.generation.chat import EndpointConfig, MissingApiKey
from pickwise.models import GenerationEndpoint, Prompt, Response
from tests.factories import bearer_headers, make_project, make_user
from tests.generation.fake_openai import fake_openai

PICKWISE = str(Path(sys.executable).with_name("pickwise"))


def test_the_key_comes_from_the_named_environment_variable() -> None:
    endpoint = GenerationEndpoint(
        name="e", base_url="http://127.0.0.1:9/v1", model="m", api_key_env="E_API_KEY"
    )
    assert EndpointConfig.from_endpoint(endpoint, {"E_API_KEY": "k1"}).api_key == "k1"
    with pytest.raises(MissingApiKey, match="E_API_KEY"):
        EndpointConfig.from_endpoint(endpoint, {})


def test_only_variables_named_like_api_keys_are_ever_read() -> None:
    environ = {"SECRET_KEY": "session-signing-secret", "DATABASE_URL": "postgresql://x"}
    for name in ("SECRET_KEY", "DATABASE_URL"):
        endpoint = GenerationEndpoint(
            name="e", base_url="http://127.0.0.1:9/v1", model="m", api_key_env=name
        )
        with pytest.raises(MissingApiKey, match=f"{name} is refused"):
            EndpointConfig.from_endpoint(endpoint, environ)


@pytest.mark.parametrize(
    "name", ["SECRET_KEY", "DATABASE_URL", "API_KEY", "_API_KEY", "OPENAI_API_KEY_2", "X_API_KEYS"]
)
async def test_api_refuses_key_variables_not_ending_in_api_key(
    client: AsyncClient, app: FastAPI, session: AsyncSession, name: str
) -> None:
    project = await make_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    await session.commit()  # a refused request rolls back what is not committed
    collection = app.url_path_for("create_endpoint", project_id=str(project.id))
    body = {"base_url": "https://api.example.org/v1", "model": "m", "api_key_env": name}
    refused = await client.post(collection, json=body, headers=headers)
    assert refused.status_code == 422 and "api_key_env" in refused.text
    made = await client.post(
        collection, json={**body, "api_key_env": "OPENAI_API_KEY"}, headers=headers
    )
    assert made.status_code == 201, made.text
    item = app.url_path_for(
        "update_endpoint", project_id=str(project.id), endpoint_id=str(made.json()["id"])
    )
    changed = await client.patch(item, json={"api_key_env": name}, headers=headers)
    assert changed.status_code == 422 and "api_key_env" in changed.text


async def test_database_refuses_key_variables_not_ending_in_api_key(session: AsyncSession) -> None:
    project = await make_project(session)
    endpoint = GenerationEndpoint(
        project_id=project.id, name="e", base_url="http://x/v1", model="m", api_key_env="SECRET_KEY"
    )
    session.add(endpoint)
    with pytest.raises(IntegrityError, match="api_key_env_format"):
        async with session.begin_nested():
            await session.flush()


async def test_endpoints_api_keeps_the_key_name_never_a_key(
    client: AsyncClient, app: FastAPI, session: AsyncSession
) -> None:
    project = await make_project(session)
    project_id = str(project.id)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    collection = app.url_path_for("create_endpoint", project_id=project_id)
    made = await client.post(
        collection,
        json={
            "base_url": "https://api.example.org/v1",
            "model": "gpt-x",
            "api_key_env": "EXAMPLE_API_KEY",
            "temperature": 0.7,
            "top_p": 0.9,
            "max_tokens": 512,
        },
        headers=headers,
    )
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["name"] == "gpt-x" and body["api_key_env"] == "EXAMPLE_API_KEY"
    assert "api_key" not in body

    again = await client.post(
        collection, json={"base_url": "https://other/v1", "model": "gpt-x"}, headers=headers
    )
    assert again.status_code == 409
    for bad in (
        {"base_url": "https://x/v1", "model": "m", "api_key_env": "sk-abc123-not-a-name"},
        {"base_url": "https://x/v1", "model": "m", "temperature": 3},
        {"base_url": "file:///etc", "model": "m"},
    ):
        assert (await client.post(collection, json=bad, headers=headers)).status_code == 422

    item = app.url_path_for("update_endpoint", project_id=project_id, endpoint_id=str(body["id"]))
    changed = await client.patch(
        item, json={"temperature": None, "is_active": False}, headers=headers
    )
    assert changed.json()["temperature"] is None and changed.json()["is_active"] is False
    listed = await client.get(collection, headers=headers)
    assert [e["name"] for e in listed.json()] == ["gpt-x"]
    assert (await client.delete(item, headers=headers)).status_code == 204
    assert await session.scalar(select(func.count()).select_from(GenerationEndpoint)) == 0


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PICKWISE, *args],
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200", **env},
        timeout=60,
    )


async def test_generate_command_answers_and_imports(live_app: Any, tmp_path: Path) -> None:
    with fake_openai() as fake:
        async with session_factory(get_engine())() as session, session.begin():
            project = await make_project(session, slug="generated")
            for name, key in (("alpha", "FAKE_API_KEY"), ("beta", None)):
                session.add(
                    GenerationEndpoint(
                        project_id=project.id,
                        name=name,
                        base_url=fake.base_url,
                        model=f"{name}-chat",
                        api_key_env=key,
                        temperature=0.5,
                    )
                )
        prompts = tmp_path / "prompts.jsonl"
        prompts.write_text(
            "".join(
                json.dumps(line) + "\n"
                for line in (
                    {"id": "p1", "prompt": "Tell me a joke"},
                    {"id": "p2", "prompt": "Flaky [500x1]"},
                    {"id": "p3", "prompt": "Down [always500]"},
                )
            )
        )
        result = await asyncio.to_thread(
            run_cli, "generate", "generated", str(prompts), "--attempts", "2", FAKE_API_KEY="k"
        )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 prompt(s) left out" in result.stdout and "p3" in result.stdout
    assert "HTTP 500: overloaded" in result.stdout
    assert "Imported batch" in result.stdout and "2 new" in result.stdout
    async with session_factory(get_engine())() as session:
        prompt_ids = set(
            (await session.execute(select(Prompt.external_id).order_by(Prompt.external_id)))
            .scalars()
            .all()
        )
        models = set((await session.execute(select(Response.model))).scalars().all())
    assert prompt_ids == {"p1", "p2"}
    assert models == {"alpha", "beta"}
