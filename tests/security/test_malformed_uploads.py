"""The generated malformed corpus (tests/batches/malformed.py, ≥ 50 files) uploaded over the
API into a project that already holds data: each file is refused with a 422 whose errors name
its line, and no row of any table changes. tests/batches checks the same files against the
parser alone; this is the path a real upload takes, down to Postgres."""

import json

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.core.config import get_settings
from pickwise.models.base import Base
from tests.batches.import_files import responses_record
from tests.batches.malformed import TEST_LIMITS
from tests.batches.test_parsing_malformed import GENERATED
from tests.factories import bearer_headers, make_project, make_user


async def row_counts(session: AsyncSession) -> dict[str, int]:
    return {
        table.name: int(await session.scalar(select(func.count()).select_from(table)) or 0)
        for table in Base.metadata.sorted_tables
    }


async def test_every_generated_malformed_upload_is_refused_and_changes_no_row(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The corpus's oversized lines are oversized for the test limit.
    monkeypatch.setattr(get_settings(), "import_max_line_bytes", TEST_LIMITS.max_line_bytes)
    project = await make_project(session)
    headers = await bearer_headers(session, await make_user(session, role="admin"))
    url = f"/api/v1/projects/{project.id}/batches"
    good = responses_record("already-there")
    stored = await client.post(
        url,
        params={"filename": "good.jsonl"},
        content=json.dumps(good).encode() + b"\n",
        headers=headers,
    )
    assert stored.status_code == 201, stored.text
    before = await row_counts(session)
    assert before["pairs"] > 0 and before["batches"] == 1

    problems = []
    assert len(GENERATED) >= 50
    for name, data, line, field in GENERATED:
        response = await client.post(
            url, params={"filename": "bad.jsonl"}, content=data, headers=headers
        )
        if response.status_code != 422:
            problems.append(f"{name}: {response.status_code} {response.text[:300]}")
            continue
        errors = response.json()["errors"]
        if not errors or {error["line"] for error in errors} != {line}:
            problems.append(f"{name}: errors not (only) on line {line}: {errors[:3]}")
        elif field not in {error.get("field") for error in errors}:
            problems.append(f"{name}: no error names field {field!r}: {errors[:3]}")
        after = await row_counts(session)
        if after != before:
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            problems.append(f"{name}: rows changed {changed}")
            before = after
    assert not problems, "\n".join(problems)
