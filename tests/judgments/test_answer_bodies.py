"""The rater loop's answers are built as plain dicts (core.json_body) and written by orjson
(core.responses), while their pydantic models stay the routes' `response_model`: each body
must be exactly what the model's own JSON dump was, so a field added to, renamed in or
retyped in a model without the body following (or the other way round) fails here."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.responses import JSONResponse
from httpx import AsyncClient
from pydantic import BaseModel, TypeAdapter
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.repository import PairContent, PromptText, ResponseText, shown_sides
from pickwise.assignments.schemas import Message, NextPair, NoWorkLeft, ShownResponse
from pickwise.assignments.service import Lease, no_work_left, shown
from pickwise.core.json_body import json_datetime
from pickwise.core.responses import JsonAnswer
from pickwise.judgments.router import _assignment_done, _judgment_out
from pickwise.judgments.schemas import (
    AnswerAndNext,
    AssignmentDone,
    AssignmentDoneAndNext,
    JudgmentAndNext,
    JudgmentOut,
)
from pickwise.judgments.service import StoredJudgment
from pickwise.models import Assignment, Project
from pickwise.vocabulary import AssignmentStatus, CanonicalSide, Choice, ShownSide
from tests.assignments.test_answer_and_next import (
    a_choice_whose_lease_is_refused,
    answer_url,
    first_lease,
)
from tests.assignments.test_rater_loop import next_url, rater_in
from tests.factories import make_pairs, make_project

# Text as raters' pairs carry it: quotes, backslashes, control characters, markdown, other
# scripts, emoji, the separators JavaScript once choked on.
AWKWARD = 'He said "no" \\ then\n\ttabbed\r\x00\x1f\x7f; **bold** — é 漢字 😀 \u2028\u2029'

MOMENTS = [
    datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC),
    datetime(2026, 12, 8, 1, 2, 3, 120_000, tzinfo=UTC),
    datetime(2026, 12, 8, 1, 2, 3, 123_456, tzinfo=ZoneInfo("UTC")),
    datetime(2026, 7, 1, 23, 59, 59, 1, tzinfo=ZoneInfo("Europe/Paris")),
    datetime(2026, 1, 1, 0, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
]


def same_json(body: dict[str, Any], model: BaseModel) -> None:
    """`body` is the model's JSON dump, as a value and as the bytes sent."""
    dumped = model.model_dump(mode="json")
    assert body == dumped
    assert JsonAnswer(body).body == JSONResponse(dumped).body


def shown_as_model(lease: Lease) -> NextPair:
    """The `NextPair` a lease was shown as when the route built the model."""
    left, right = shown_sides(lease.content, lease.left_side)
    return NextPair(
        assignment_id=lease.assignment_id,
        pair_id=lease.pair_id,
        lease_expires_at=lease.expires_at,
        system=lease.content.prompt.system,
        turns=[Message(**turn) for turn in lease.content.prompt.turns],
        left=ShownResponse(side=ShownSide.LEFT, content=left.content),
        right=ShownResponse(side=ShownSide.RIGHT, content=right.content),
    )


def a_lease(left_side: CanonicalSide, expires_at: datetime, system: str | None) -> Lease:
    turns = [
        {"role": "user", "content": f"Question? {AWKWARD}"},
        # Keys besides role and content are not shown (the model ignored them).
        {"role": "assistant", "content": "An earlier answer.", "name": "bot"},
        {"role": "user", "content": ""},
    ]
    content = PairContent(
        pair_id=7,
        prompt=PromptText(system=system, turns=turns),
        response_a=ResponseText(11, f"Answer A {AWKWARD}"),
        response_b=ResponseText(12, "Answer B\n\n- one\n- two"),
    )
    return Lease(123, 7, left_side, False, expires_at, content)


@pytest.mark.parametrize("expires_at", MOMENTS)
@pytest.mark.parametrize("left_side", list(CanonicalSide))
@pytest.mark.parametrize("system", [None, f"Be brief. {AWKWARD}"])
def test_a_shown_pair_is_its_models_json(
    expires_at: datetime, left_side: CanonicalSide, system: str | None
) -> None:
    lease = a_lease(left_side, expires_at, system)
    body = shown(lease)
    same_json(body, shown_as_model(lease))
    assert body["left"]["content"].startswith("Answer A" if left_side == "a" else "Answer B")


def test_no_work_left_is_its_models_json() -> None:
    same_json(no_work_left(), NoWorkLeft())
    no_work_left()["detail"] = "changed by one answer"
    assert no_work_left() == NoWorkLeft().model_dump(mode="json")


@pytest.mark.parametrize("moment", MOMENTS)
def test_a_datetime_is_written_as_pydantic_writes_it(moment: datetime) -> None:
    assert json_datetime(moment) == TypeAdapter(datetime).dump_python(moment, mode="json")


@pytest.mark.parametrize("choice", list(Choice))
@pytest.mark.parametrize("gold_feedback", [None, f"The expected answer was A. {AWKWARD}"])
@pytest.mark.parametrize("submitted_at", MOMENTS[:2])
def test_a_judgments_answer_is_its_models_json(
    choice: Choice, gold_feedback: str | None, submitted_at: datetime
) -> None:
    stored = StoredJudgment(
        judgment_id=2**40,
        pair_id=9,
        choice=choice,
        submitted_at=submitted_at,
        gold_feedback=gold_feedback,
        project=Project(),
    )
    out = JudgmentOut(
        judgment_id=2**40,
        assignment_id=5,
        pair_id=9,
        choice=choice,
        submitted_at=submitted_at,
        gold_feedback=gold_feedback,
    )
    same_json(_judgment_out(5, stored), out)


@pytest.mark.parametrize("status", [AssignmentStatus.SKIPPED, AssignmentStatus.FLAGGED, "skipped"])
def test_a_skip_or_flags_answer_is_its_models_json(status: str) -> None:
    assignment = Assignment(id=31, status=status)
    same_json(_assignment_done(assignment), AssignmentDone(assignment_id=31, status=status))


# --- over HTTP: every answer of the loop validates against its response model and is its
# dump (fields the body leaves out, `next_error` when there is none, left out of both).


def as_model(body: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    return model.model_validate(body).model_dump(mode="json", exclude_unset=True)


async def test_the_next_pair_over_http_is_its_models_json(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session)
    await make_pairs(session, project, 1)
    _, headers = await rater_in(session, project)
    pair = await client.get(next_url(project), headers=headers)
    assert pair.status_code == 200
    assert pair.headers["content-type"] == "application/json"
    body = pair.json()
    assert body["assignment_id"] is not None
    assert as_model(body, NextPair) == body
    assert NextPair.model_validate(body).model_dump(mode="json") == body
    # Held, it comes back the same (a lease read back from the database).
    assert (await client.get(next_url(project), headers=headers)).json() == body
    answered = await client.post(
        answer_url(body["assignment_id"]), json={"choice": "left"}, headers=headers
    )
    assert answered.json()["next"] == NoWorkLeft().model_dump(mode="json")
    none_left = await client.get(next_url(project), headers=headers)
    assert none_left.json() == NoWorkLeft().model_dump(mode="json")


async def test_a_choice_with_its_next_pair_is_its_models_json(
    client: AsyncClient, session: AsyncSession
) -> None:
    _project, headers, first = await first_lease(
        client, session, 3, strength_scale=["a bit", "much"]
    )
    sent = {"choice": "right", "strength": 1, "rationale": 'Because — "é" 😀'}
    response = await client.post(answer_url(first["assignment_id"]), json=sent, headers=headers)
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {*JudgmentOut.model_fields, "next"}
    assert body["gold_feedback"] is None
    assert as_model(body, JudgmentAndNext) == body
    assert NextPair.model_validate(body["next"]).model_dump(mode="json") == body["next"]
    # The page's own form of a choice without `?next`: the model's full dump.
    plain = await client.post(
        f"/api/v1/assignments/{body['next']['assignment_id']}/judgment",
        json={"choice": "tie"},
        headers=headers,
    )
    assert JudgmentOut.model_validate(plain.json()).model_dump(mode="json") == plain.json()


async def test_gold_feedback_in_the_answer_is_its_models_json(
    client: AsyncClient, session: AsyncSession
) -> None:
    project = await make_project(session, gold_rate=1.0, gold_feedback=True)
    await make_pairs(session, project, 2, gold=1)
    _, headers = await rater_in(session, project)
    first = (await client.get(next_url(project), headers=headers)).json()
    assignment = await session.get(Assignment, first["assignment_id"])
    assert assignment is not None and assignment.is_gold
    # The gold winner is response a; the other one is wrong.
    wrong = "right" if assignment.left_side == "a" else "left"
    keyed = {**headers, "Idempotency-Key": "gold-once"}
    response = await client.post(
        answer_url(first["assignment_id"]), json={"choice": wrong}, headers=keyed
    )
    body = response.json()
    assert body["gold_feedback"]
    assert as_model(body, JudgmentAndNext) == body
    replay = await client.post(
        answer_url(first["assignment_id"]), json={"choice": wrong}, headers=keyed
    )
    assert {**replay.json(), "next": None} == {**body, "next": None}


@pytest.mark.parametrize(
    ("action", "payload"), [("skip", {"reason": "cant_judge"}), ("flag", {"reason": "other"})]
)
async def test_a_skip_or_flag_with_its_next_pair_is_its_models_json(
    client: AsyncClient, session: AsyncSession, action: str, payload: dict[str, Any]
) -> None:
    _project, headers, first = await first_lease(client, session, 2)
    response = await client.post(
        answer_url(first["assignment_id"], action), json=payload, headers=headers
    )
    body = response.json()
    assert set(body) == {*AssignmentDone.model_fields, "next"}
    assert as_model(body, AssignmentDoneAndNext) == body


async def test_a_failed_next_pair_is_its_models_json(
    client: AsyncClient, session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, response = await a_choice_whose_lease_is_refused(client, session, monkeypatch)
    body = response.json()
    assert body["next"] is None and body["next_error"]["status"] == 403
    assert as_model(body, JudgmentAndNext) == body
    assert as_model({"next": None, "next_error": body["next_error"]}, AnswerAndNext) == {
        "next": None,
        "next_error": body["next_error"],
    }
