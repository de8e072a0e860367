"""`pickwise import` twice: the second run says nothing was new and adds no batch."""

import asyncio
import json
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from typer.testing import CliRunner

from pickwise.cli.main import app as cli
from pickwise.core.db import get_engine, session_factory
from pickwise.models import Batch
from tests.factories import make_project


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env={"COLUMNS": "200"})


async def test_importing_the_same_file_again_adds_nothing(live_app: Any, tmp_path: Path) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session)
        slug, project_id = project.slug, project.id
    await get_engine().dispose()  # the CLI runs its own event loop on the same engine
    rows = [
        {"id": f"q{n}", "prompt": f"Question {n}?", "responses": [
            {"id": "a", "model": "m1", "content": "One."},
            {"id": "b", "model": "m2", "content": "Two."},
        ]}
        for n in range(3)
    ]  # fmt: skip
    file = tmp_path / "questions.jsonl"
    file.write_text("".join(json.dumps(row) + "\n" for row in rows))

    first = await asyncio.to_thread(invoke, "import", slug, str(file))
    again = await asyncio.to_thread(invoke, "import", slug, str(file))

    assert first.exit_code == 0 and "Imported batch" in first.output, first.output
    assert again.exit_code == 0, again.output
    assert "Nothing new in questions.jsonl" in again.output
    assert "all 3 prompts are already in the project" in " ".join(again.output.split())
    await get_engine().dispose()
    async with session_factory(get_engine())() as session:
        batches = await session.scalar(
            select(func.count()).select_from(Batch).where(Batch.project_id == project_id)
        )
    assert batches == 1


async def test_the_import_command_makes_the_answers_searchable_unless_told_later(
    live_app: Any, tmp_path: Path
) -> None:
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session)
        slug = project.slug
    await get_engine().dispose()
    pending = {}
    for name, later in (("now", []), ("later", ["--search-later"])):
        file = tmp_path / f"{name}.jsonl"
        row = {"id": name, "prompt": "Why?", "response_a": "Because.", "response_b": "No.",
               "model_a": "m1", "model_b": "m2"}  # fmt: skip
        file.write_text(json.dumps(row) + "\n")
        result = await asyncio.to_thread(invoke, "import", slug, str(file), *later)
        assert result.exit_code == 0, result.output
        # (It catches up every pending batch: other tests may have left some.)
        assert ("Searchable:" in result.output) == (not later), result.output
        await get_engine().dispose()
        async with session_factory(get_engine())() as session:
            pending[name] = await session.scalar(
                select(Batch.search_pending).where(Batch.filename == file.name)
            )
    assert pending == {"now": 0, "later": 2}
    caught_up = await asyncio.to_thread(invoke, "search-catch-up")
    assert caught_up.exit_code == 0 and "Searchable:" in caught_up.output, caught_up.output
    await get_engine().dispose()
    async with session_factory(get_engine())() as session:
        left = await session.scalar(
            select(Batch.search_pending).where(Batch.filename == "later.jsonl")
        )
    assert left == 0


async def test_the_import_command_imports_a_conversation_projects_openers(
    live_app: Any, tmp_path: Path
) -> None:
    # The command writes pairs' batches through psycopg alone; a conversations project's
    # openers go through their own flow, with the ORM.
    async with session_factory(get_engine())() as session, session.begin():
        slug = (await make_project(session, kind="conversations")).slug
    await get_engine().dispose()
    file = tmp_path / "openers.jsonl"
    file.write_text('{"id": "o1", "prompt": "Hello there"}\n{"id": "o2", "prompt": "Hi"}\n')

    result = await asyncio.to_thread(invoke, "import", slug, str(file), "--search-later")

    assert result.exit_code == 0 and "Imported batch" in result.output, result.output
    await get_engine().dispose()
    async with session_factory(get_engine())() as session:
        batch = await session.scalar(select(Batch).where(Batch.filename == file.name))
    assert batch is not None and (batch.prompts_new, batch.pairs_new) == (2, 0)


async def test_the_import_command_names_a_project_it_cannot_find(
    live_app: Any, tmp_path: Path
) -> None:
    file = tmp_path / "batch.jsonl"
    file.write_text('{"id": "p1", "prompt": "?", "response_a": "a", "response_b": "b"}\n')

    result = await asyncio.to_thread(invoke, "import", "no-such-slug", str(file))

    assert result.exit_code == 1, result.output
    assert "project 'no-such-slug': no such project" in result.output
