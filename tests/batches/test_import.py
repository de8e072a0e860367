"""Importing into Postgres: shapes, pairs, idempotency, conflicts, and all-or-nothing."""

import io
import json
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pickwise.batches.parsing.report import ImportRejected
from pickwise.batches.service import import_stream
from pickwise.core.db import get_engine, session_factory
from pickwise.models import Batch, Pair, PairSlot, Project, Prompt, Response
from tests.factories import add_member, bearer_headers, make_project, make_user


def jsonl(*rows: dict[str, Any]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def prompt_row(external_id: str, n: int = 3, **extra: Any) -> dict[str, Any]:
    return {
        "id": external_id,
        "prompt": f"Question {external_id}?",
        "responses": [
            {"id": f"r{i}", "model": f"m{i}", "content": f"answer {i}"} for i in range(n)
        ],
        **extra,
    }


async def counts(session: AsyncSession, project: Project) -> tuple[int, ...]:
    result = []
    for model in (Prompt, Response, Pair, Batch, PairSlot):
        result.append(
            await session.scalar(
                select(func.count()).select_from(model).where(model.project_id == project.id)
            )
        )
    return tuple(int(value or 0) for value in result)


async def run_import(
    session: AsyncSession, project: Project, data: bytes, filename: str = "batch.jsonl"
) -> Any:
    return await import_stream(
        session, project, io.BytesIO(data), filename=filename, source="cli", user=None
    )


async def test_responses_shape_makes_all_pairs_and_slots(session: AsyncSession) -> None:
    project = await make_project(session, raters_per_pair=2)
    outcome = await run_import(session, project, jsonl(prompt_row("p1"), prompt_row("p2", 4)))
    assert (outcome.prompts_new, outcome.responses_new, outcome.pairs_new) == (2, 7, 3 + 6)
    assert await counts(session, project) == (2, 7, 9, 1, 18)
    batch = await session.get(Batch, outcome.batch_id)
    assert batch is not None and batch.pairs_new == 9 and len(batch.sha256) == 64
    # Pairs are stored once, in canonical order, and belong to their prompt.
    pairs = list(await session.scalars(select(Pair).where(Pair.project_id == project.id)))
    assert all(pair.response_a_id < pair.response_b_id for pair in pairs)


async def test_random_k_strategy_is_reproducible(session: AsyncSession) -> None:
    picked = []
    for _ in range(2):
        project = await make_project(session, pairing_strategy="random_k", pairs_per_prompt=2)
        await run_import(session, project, jsonl(prompt_row("p1", 5)))
        rows = await session.execute(
            select(Response.external_id, Pair.id)
            .join(Pair, Pair.response_a_id == Response.id)
            .where(Pair.project_id == project.id)
            .order_by(Pair.id)
        )
        picked.append([external_id for external_id, _ in rows])
    assert len(picked[0]) == 2 and picked[0] == picked[1]


async def test_multi_turn_with_system_prompt_and_gold(session: AsyncSession) -> None:
    project = await make_project(session)
    row = {
        "id": "chat",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "What is 2+2?"},
        ],
        "responses": [
            {"id": "good", "model": "m1", "content": "4"},
            {"id": "bad", "model": "m2", "content": "5"},
        ],
        "gold": {"winner": "good"},
    }
    await run_import(session, project, jsonl(row))
    prompt = await session.scalar(select(Prompt).where(Prompt.project_id == project.id))
    assert prompt is not None and prompt.system == "Be brief."
    assert [turn["role"] for turn in prompt.turns] == ["user", "assistant", "user"]
    pair = await session.scalar(select(Pair).where(Pair.project_id == project.id))
    winner = await session.scalar(
        select(Response).where(Response.prompt_id == prompt.id, Response.external_id == "good")
    )
    assert pair is not None and winner is not None
    assert pair.is_gold and pair.gold_winner_id == winner.id
    # Gold pairs are open to every rater, so they have no capacity slots.
    assert (await counts(session, project))[4] == 0


async def test_ready_made_pairs_in_jsonl_and_csv(session: AsyncSession) -> None:
    project = await make_project(session)
    pair_row = {
        "id": "x1",
        "prompt": "Say hi",
        "response_a": "hi",
        "response_b": "hello",
        "model_a": "m1",
        "model_b": "m2",
    }
    await run_import(session, project, jsonl(pair_row))
    csv_data = (
        "\ufeffid,prompt,response_a,response_b,model_a,model_b\r\n"
        'x2,"Say bye, please",bye,"goodbye, friend",m1,m2\r\n'
    ).encode()
    outcome = await run_import(session, project, csv_data, filename="pairs.csv")
    assert outcome.pairs_new == 1
    contents = set(
        await session.scalars(select(Response.content).where(Response.project_id == project.id))
    )
    assert {"hi", "hello", "bye", "goodbye, friend"} == contents


async def test_reimport_is_idempotent(session: AsyncSession) -> None:
    project = await make_project(session)
    data = jsonl(prompt_row("p1"), prompt_row("p2"))
    await run_import(session, project, data)
    before = await counts(session, project)
    again = await run_import(session, project, data)
    assert (again.prompts_new, again.prompts_unchanged, again.pairs_new) == (0, 2, 0)
    # Nothing new: no empty batch row either.
    assert again.nothing_new and again.batch_id is None
    assert again.summary == (
        "nothing new: all 2 prompts are already in the project, unchanged; no batch was added"
    )
    assert await counts(session, project) == before
    # One new prompt among unchanged ones is a batch like any other.
    partly = await run_import(session, project, jsonl(prompt_row("p1"), prompt_row("p3")))
    assert not partly.nothing_new and partly.batch_id is not None
    assert partly.summary.startswith("1 new, 1 unchanged")
    assert (await counts(session, project))[3] == before[3] + 1


async def test_reimport_over_the_api_answers_nothing_new(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    admin = await make_user(session, role="admin")
    headers = await bearer_headers(session, admin)
    url = f"/api/v1/projects/{project.id}/batches"
    data = jsonl(prompt_row("p1"), prompt_row("p2"))
    first = await client.post(url, content=data, headers=headers)
    assert first.status_code == 201 and first.json()["nothing_new"] is False
    again = await client.post(url, content=data, headers=headers)
    assert again.status_code == 200, again.text
    body = again.json()
    assert (body["batch_id"], body["nothing_new"], body["prompts_unchanged"]) == (None, True, 2)
    assert body["summary"].startswith("nothing new")
    listed = (await client.get(url, headers=headers)).json()
    assert [batch["id"] for batch in listed] == [first.json()["batch_id"]]


async def test_same_id_different_content_is_a_conflict_and_nothing_changes(
    session: AsyncSession,
) -> None:
    project = await make_project(session)
    await run_import(session, project, jsonl(prompt_row("p1")))
    before = await counts(session, project)
    changed = prompt_row("p1")
    changed["responses"][0]["content"] = "a different answer"
    with pytest.raises(ImportRejected) as caught:
        async with session.begin_nested():
            await run_import(session, project, jsonl(prompt_row("p9"), changed))
    error = caught.value.report.errors[0]
    assert (error.line, error.field) == (2, "id")
    assert "already exists" in error.message
    assert await counts(session, project) == before


BAD_FILES: list[tuple[str, bytes, int | None, str]] = [
    ("broken json", b'{"id": "a", "prompt": "x"\n', 1, "JSON"),
    ("bad utf-8", jsonl(prompt_row("a")) + b'{"id": "\xff"}\n', 2, "UTF-8"),
    ("missing field", jsonl({"id": "a", "prompt": "x"}), 1, "responses"),
    ("wrong type", jsonl({**prompt_row("a"), "prompt": 5}), 1, "prompt"),
    (
        "empty content",
        jsonl(
            {
                **prompt_row("a"),
                "responses": [{"model": "m", "content": " "}, {"model": "m", "content": "ok"}],
            }
        ),
        1,
        "empty",
    ),
    (
        "one distinct response",
        jsonl(
            {
                **prompt_row("a"),
                "responses": [{"model": "m", "content": "same"}, {"model": "n", "content": "same"}],
            }
        ),
        1,
        "different",
    ),
    ("gold not a response", jsonl({**prompt_row("a"), "gold": {"winner": "zz"}}), 1, "winner"),
    (
        "ends on assistant",
        jsonl(
            {
                **{k: v for k, v in prompt_row("a").items() if k != "prompt"},
                "messages": [
                    {"role": "user", "content": "q"},
                    {"role": "assistant", "content": "a"},
                ],
            }
        ),
        1,
        "user",
    ),
    ("broken csv", b'id,prompt,response_a,response_b,model_a,model_b\nx,"open,a,b,m,n\n', None, ""),
    ("empty file", b"", None, "no records"),
]


@pytest.mark.parametrize(
    ("name", "data", "line", "needle"), BAD_FILES, ids=[c[0] for c in BAD_FILES]
)
async def test_bad_files_are_rejected_whole(
    session: AsyncSession, name: str, data: bytes, line: int | None, needle: str
) -> None:
    project = await make_project(session)
    await run_import(session, project, jsonl(prompt_row("keep")))
    before = await counts(session, project)
    filename = "bad.csv" if "csv" in name else "bad.jsonl"
    with pytest.raises(ImportRejected) as caught:
        async with session.begin_nested():
            # A good line first: the bad one must sink the whole file, not just itself.
            prefix = jsonl(prompt_row("new")) if line is not None else b""
            await run_import(session, project, prefix + data, filename)
    report = caught.value.report
    assert report.error_count >= 1
    if line is not None:
        # The good first line shifts the bad one down by one.
        assert report.errors[0].line == line + 1, report.errors
    assert needle.lower() in str(report.errors[0]).lower(), report.errors[0]
    assert await counts(session, project) == before


async def test_oversized_line_is_rejected(session: AsyncSession) -> None:
    from pickwise.batches.parsing.report import ImportLimits

    project = await make_project(session)
    big = jsonl({**prompt_row("a"), "prompt": "x" * 5000})
    with pytest.raises(ImportRejected) as caught:
        await import_stream(
            session,
            project,
            io.BytesIO(big),
            filename="big.jsonl",
            source="cli",
            user=None,
            limits=ImportLimits(max_line_bytes=1000),
        )
    assert caught.value.report.errors[0].line == 1
    assert await counts(session, project) == (0, 0, 0, 0, 0)


async def test_api_upload_with_token_and_errors(client: AsyncClient, session: AsyncSession) -> None:
    admin = await make_user(session, role="admin")
    project = await make_project(session)
    headers = await bearer_headers(session, admin)
    url = f"/api/v1/projects/{project.id}/batches"
    ok = await client.post(
        url, params={"filename": "b.jsonl"}, content=jsonl(prompt_row("p1")), headers=headers
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["pairs_new"] == 3
    bad = await client.post(
        url,
        params={"filename": "b.jsonl"},
        content=jsonl(prompt_row("p2")) + b"not json\n",
        headers=headers,
    )
    assert bad.status_code == 422
    body = bad.json()
    assert body["error_count"] == 1 and body["errors"][0]["line"] == 2
    listed = await client.get(url, headers=headers)
    assert [batch["filename"] for batch in listed.json()] == ["b.jsonl"]


async def test_rater_cannot_import(client: AsyncClient, session: AsyncSession) -> None:
    project = await make_project(session)
    rater = await make_user(session)
    await add_member(session, project, rater)
    response = await client.post(
        f"/api/v1/projects/{project.id}/batches",
        content=jsonl(prompt_row("p1")),
        headers=await bearer_headers(session, rater),
    )
    assert response.status_code == 403
    assert (await counts(session, project))[0] == 0


async def test_a_pairs_a_is_the_response_listed_first(session: AsyncSession) -> None:
    """One rule, docs/import-format.md "Pairs": A is the response the file lists first (it
    gets the smaller id), whatever the response ids say; in the pairs shape, response_a."""
    project = await make_project(session)
    listed = {
        "id": "order",
        "prompt": "Pick one.",
        "responses": [
            {"id": "z", "model": "m1", "content": "listed first"},
            {"id": "a", "model": "m2", "content": "listed second"},
            {"id": "m", "model": "m3", "content": "listed third"},
        ],
    }
    pairs_shape = {
        "id": "arena",
        "prompt": "Pick again.",
        "response_a": "left column",
        "response_b": "right column",
        "model_a": "zz-model",
        "model_b": "aa-model",
    }
    await run_import(session, project, jsonl(listed))
    await run_import(session, project, jsonl(pairs_shape), filename="arena.jsonl")
    response_a, response_b = aliased(Response), aliased(Response)
    rows = await session.execute(
        select(Prompt.external_id, response_a.content, response_b.content)
        .join(Pair, Pair.prompt_id == Prompt.id)
        .join(response_a, response_a.id == Pair.response_a_id)
        .join(response_b, response_b.id == Pair.response_b_id)
        .where(Pair.project_id == project.id)
    )
    found = sorted(tuple(row) for row in rows)
    assert found == [
        ("arena", "left column", "right column"),
        ("order", "listed first", "listed second"),
        ("order", "listed first", "listed third"),
        ("order", "listed second", "listed third"),
    ]
    ids = await session.execute(
        select(Response.external_id, Response.id)
        .join(Prompt, Prompt.id == Response.prompt_id)
        .where(Prompt.external_id == "order", Prompt.project_id == project.id)
        .order_by(Response.id)
    )
    assert [external_id for external_id, _ in ids] == ["z", "a", "m"]


async def test_an_import_stays_in_the_sessions_transaction_on_a_fresh_session(
    live_app: Any,
) -> None:
    # The import writes on the psycopg connection under the session. On a session where
    # nothing ran yet, psycopg would begin (and commit) a transaction of its own for the
    # import's savepoint; the import must stay in the session's, which this one rolls back.
    async with session_factory(get_engine())() as session, session.begin():
        project = await make_project(session)
    async with session_factory(get_engine())() as session:
        outcome = await import_stream(
            session,
            project,
            io.BytesIO(jsonl(prompt_row("p1"))),
            filename="b.jsonl",
            source="cli",
            user=None,
        )
        assert outcome.prompts_new == 1
        await session.rollback()
    async with session_factory(get_engine())() as session:
        batches = await session.scalar(
            select(func.count()).select_from(Batch).where(Batch.project_id == project.id)
        )
    assert batches == 0
