from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pickwise.models import Assignment, Judgment, Pair, Prompt, Response


@dataclass(frozen=True)
class PromptText:
    system: str | None
    turns: list[Any]


@dataclass(frozen=True)
class ResponseText:
    id: int
    content: str


@dataclass(frozen=True)
class PairContent:
    """What a rater is shown of a pair: texts only (no model names, no gold status)."""

    pair_id: int
    prompt: PromptText
    response_a: ResponseText
    response_b: ResponseText


_response_a, _response_b = aliased(Response), aliased(Response)
# Built once: this runs on every "next pair".
_PAIR_CONTENT = (
    select(
        Prompt.system,
        Prompt.turns,
        _response_a.id,
        _response_a.content,
        _response_b.id,
        _response_b.content,
    )
    .select_from(Pair)
    .join(Prompt, Prompt.id == Pair.prompt_id)
    .join(_response_a, _response_a.id == Pair.response_a_id)
    .join(_response_b, _response_b.id == Pair.response_b_id)
    .where(Pair.id == bindparam("pair_id"))
)


def content_from_row(pair_id: int, row: Sequence[Any]) -> PairContent:
    """From (system, turns, response A id, its text, response B id, its text)."""
    system, turns, a_id, a_content, b_id, b_content = row
    return PairContent(
        pair_id,
        PromptText(system, turns),
        ResponseText(a_id, a_content),
        ResponseText(b_id, b_content),
    )


async def pair_content(session: AsyncSession, pair_id: int) -> PairContent:
    """The pair's prompt and both responses, in one query."""
    row = (await session.execute(_PAIR_CONTENT, {"pair_id": pair_id})).one()
    return content_from_row(pair_id, row)


def shown_sides(content: PairContent, assignment: Assignment) -> tuple[ResponseText, ResponseText]:
    """(left, right) as this rater sees them."""
    if assignment.left_side == "a":
        return content.response_a, content.response_b
    return content.response_b, content.response_a


async def rater_counts(
    session: AsyncSession, project_id: int, rater_id: int, since: datetime
) -> dict[str, Any]:
    total, today = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(Judgment.submitted_at >= since),
            ).where(Judgment.project_id == project_id, Judgment.rater_id == rater_id)
        )
    ).one()
    return {"total": int(total), "today": int(today)}
