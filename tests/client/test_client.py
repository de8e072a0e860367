"""The Python client against the app in this process (through LoopTransport)."""

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import next_lease
from pickwise.auth import service as auth_service
from pickwise.client import Client, ImportSummary, Leaderboard, PickwiseAPIError, Progress
from pickwise.core.db import get_engine, session_factory
from pickwise.judgments import service as judgments
from pickwise.judgments.schemas import JudgmentIn
from pickwise.models import Batch, Project, User
from tests.client.bridge import LoopTransport
from tests.factories import add_member, make_project, make_user

T = TypeVar("T")


def rows(count: int, *, start: int = 0, broken: int | None = None) -> Iterator[dict[str, Any]]:
    """Import records; the one numbered `broken` has a single response (invalid)."""
    for n in range(start, start + count):
        responses = [
            {"id": "a", "model": "model-a", "content": f"A answers question {n}."},
            {"id": "b", "model": "model-b", "content": f"B answers question {n} at length."},
        ]
        yield {
            "id": f"q{n}",
            "prompt": f"Question {n}?",
            "responses": responses[: 1 if n == broken else 2],
        }


class Harness:
    def __init__(self, app: FastAPI, token: str) -> None:
        self.transport = LoopTransport(app, asyncio.get_running_loop())
        self.token = token

    def client(self, token: str | None = None) -> Client:
        return Client("http://test", token or self.token, transport=self.transport, backoff=0)

    async def run(self, work: Callable[[Client], T], token: str | None = None) -> T:
        def in_thread() -> T:
            with self.client(token) as pw:
                return work(pw)

        return await asyncio.to_thread(in_thread)


@pytest.fixture
async def harness(app: FastAPI, session: AsyncSession) -> Harness:
    admin = await make_user(session, role="admin")
    token, _ = await auth_service.create_api_token(session, admin, "client tests")
    return Harness(app, token)


async def test_rows_go_in_as_batches_and_again_add_nothing(
    harness: Harness, session: AsyncSession
) -> None:
    project = await harness.run(lambda pw: pw.create_project("from-client", "From the client"))
    assert project.slug == "from-client" and project.raters_per_pair == 1

    summaries = await harness.run(
        lambda pw: pw.add_prompts("from-client", rows(25), filename="gen.jsonl", batch_rows=10)
    )
    assert [(s.filename, s.rows, s.prompts_new, s.pairs_new) for s in summaries] == [
        ("gen.part1.jsonl", 10, 10, 10),
        ("gen.part2.jsonl", 10, 10, 10),
        ("gen.part3.jsonl", 5, 5, 5),
    ]
    assert all(isinstance(s, ImportSummary) for s in summaries)
    batches = await session.scalar(
        select(func.count()).select_from(Batch).where(Batch.project_id == project.id)
    )
    assert batches == 3

    again = await harness.run(lambda pw: pw.add_prompts(project, rows(25)))
    assert [(s.filename, s.prompts_new, s.prompts_unchanged) for s in again] == [
        ("client.jsonl", 0, 25)
    ]
    assert again[0].nothing_new and again[0].batch_id is None
    assert (
        await session.scalar(
            select(func.count()).select_from(Batch).where(Batch.project_id == project.id)
        )
        == 3
    )
    assert await harness.run(lambda pw: pw.add_prompts(project.id, iter(()))) == []


async def test_a_batch_is_also_cut_by_size(harness: Harness, session: AsyncSession) -> None:
    project = await make_project(session)
    line_bytes = len(json.dumps(next(rows(1))).encode()) + 1
    summaries = await harness.run(
        lambda pw: pw.add_prompts(project.id, rows(6), batch_bytes=2 * line_bytes + 5)
    )
    assert [s.rows for s in summaries] == [2, 2, 2]


async def test_a_rejected_batch_names_the_rows_and_what_was_stored(
    harness: Harness, session: AsyncSession
) -> None:
    project = await make_project(session)
    project_id = project.id

    def add(pw: Client) -> list[ImportSummary]:
        return pw.add_prompts(project_id, rows(30, broken=13), batch_rows=10)

    with pytest.raises(PickwiseAPIError) as caught:
        await harness.run(add)
    error = caught.value
    assert error.status_code == 422 and error.error == "ImportRejected"
    assert [s.rows for s in error.imported] == [10]
    [problem] = error.line_errors
    assert (problem.row, problem.line, problem.field) == (13, 4, "responses")
    assert "row 13" in str(error)
    assert "at least two responses" in str(error)


async def test_progress_export_and_leaderboard(live_app: FastAPI, tmp_path: Path) -> None:
    """Progress, exports and analytics read through their own connections, so this test
    commits (live_app empties the tables afterwards)."""
    async with session_factory(get_engine())() as session, session.begin():
        admin = await make_user(session, role="admin")
        token, _ = await auth_service.create_api_token(session, admin, "client tests")
        project = await make_project(session, raters_per_pair=1)
        rater = await make_user(session)
        await add_member(session, project, rater)
    harness = Harness(live_app, token)
    await harness.run(lambda pw: pw.add_prompts(project.id, rows(4)))

    before = await harness.run(lambda pw: pw.progress(project.id))
    assert isinstance(before, Progress)
    assert (before.pairs_open, before.judgments_needed, before.complete) == (4, 4, False)

    while True:
        async with session_factory(get_engine())() as session, session.begin():
            assignment = await next_lease(session, project, rater)
            if assignment is None:
                break
            await judgments.submit(
                session, assignment.assignment_id, rater, JudgmentIn(choice="left")
            )

    seen: list[Progress] = []
    after = await harness.run(
        lambda pw: pw.wait_until_complete(project.id, poll_seconds=0, on_progress=seen.append)
    )
    assert (after.pairs_done, after.judgments_needed, after.complete) == (4, 0, True)
    assert seen == [after]

    target = tmp_path / "votes.jsonl"
    written = await harness.run(
        lambda pw: pw.download_export(project.slug, path=target, format="votes", test_fraction=0)
    )
    assert written == target and not (tmp_path / "votes.jsonl.part").exists()
    assert len(target.read_text().splitlines()) == 4

    board = await harness.run(lambda pw: pw.leaderboard(project.id, bootstrap_rounds=100))
    assert isinstance(board, Leaderboard)
    assert board.ready or board.message


async def test_errors_are_typed(harness: Harness, session: AsyncSession, tmp_path: Path) -> None:
    project = await make_project(session)
    # Error answers roll the test's session back, which expires `project`.
    project_id, slug = project.id, project.slug

    with pytest.raises(PickwiseAPIError) as unknown:
        await harness.run(lambda pw: pw.progress("no-such-project"))
    assert unknown.value.status_code == 404

    with pytest.raises(PickwiseAPIError) as bad_token:
        await harness.run(lambda pw: pw.list_projects(), token="pw_not-a-token")
    assert bad_token.value.status_code == 401 and bad_token.value.error == "NotAuthenticated"

    with pytest.raises(PickwiseAPIError) as taken:
        await harness.run(lambda pw: pw.create_project(slug, "Twice"))
    assert taken.value.status_code == 409 and "already exists" in taken.value.detail

    target = tmp_path / "x.jsonl"
    with pytest.raises(PickwiseAPIError) as bad_format:
        await harness.run(lambda pw: pw.download_export(project_id, path=target, format="nope"))
    assert bad_format.value.status_code == 422
    assert not target.exists() and not (tmp_path / "x.jsonl.part").exists()

    with pytest.raises(ValueError, match="row 0 cannot be written as JSON"):
        await harness.run(lambda pw: pw.add_prompts(project_id, [{"id": object()}]))


async def rater_with_pairs(session: AsyncSession, pairs: int) -> tuple[Project, User, str]:
    """A project of `pairs` pairs, a rater of it and the rater's API token."""
    from tests.factories import make_pairs

    project = await make_project(session)
    await make_pairs(session, project, pairs)
    rater = await make_user(session)
    await add_member(session, project, rater)
    token, _ = await auth_service.create_api_token(session, rater, "rating")
    return project, rater, token


async def test_a_rater_judges_with_one_request_per_pair(
    harness: Harness, session: AsyncSession
) -> None:
    from pickwise.models import Assignment, Judgment

    project, _rater, rater_token = await rater_with_pairs(session, 3)
    project_id = project.id

    def rate(pw: Client) -> list[Any]:
        seen = []
        pair = pw.next_pair(project_id)
        assert pair is not None
        first = pw.skip(pair.assignment_id, "cant_judge")
        assert first.status == "skipped"
        seen.append(pair)
        pair = first.next
        while pair is not None:
            seen.append(pair)
            answered = pw.judge(pair.assignment_id, "left", rationale="clearer")
            assert answered.judgment_id is not None and answered.choice in ("a", "b")
            pair = answered.next
        assert pw.next_pair(project_id) is None
        return seen

    seen = await harness.run(rate, token=rater_token)
    assert len({pair.pair_id for pair in seen}) == 3
    assert {pair.left.side for pair in seen} == {"left"}
    stored = await session.scalar(select(func.count()).select_from(Judgment))
    assert stored == 2
    leases = await session.scalar(select(func.count()).select_from(Assignment))
    assert leases == 3


async def test_when_the_next_lease_fails_the_client_asks_for_it(
    harness: Harness, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy import text

    from pickwise.assignments import repository as assignments_repository

    project, rater, rater_token = await rater_with_pairs(session, 2)
    lease = await next_lease(session, project, rater)
    assert lease is not None
    enter_and_claim = assignments_repository.enter_and_claim
    failures = []

    async def fails_once(claim_session: AsyncSession, *params: Any, **options: Any) -> Any:
        if not failures:
            failures.append(params)
            await claim_session.execute(text("SELECT 1 / 0"))
        return await enter_and_claim(claim_session, *params, **options)

    monkeypatch.setattr(assignments_repository, "enter_and_claim", fails_once)
    answered = await harness.run(
        lambda pw: pw.judge(lease.assignment_id, "right"), token=rater_token
    )
    assert failures and answered.judgment_id is not None
    assert answered.next is not None and answered.next.pair_id != lease.pair_id
