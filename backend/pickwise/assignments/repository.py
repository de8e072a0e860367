from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Assignment, Judgment, Pair, Prompt, Response


@dataclass(frozen=True)
class PairContent:
    pair: Pair
    prompt: Prompt
    response_a: Response
    response_b: Response


async def pair_content(session: AsyncSession, pair_id: int) -> PairContent:
    pair = await session.get(Pair, pair_id)
    assert pair is not None
    prompt = await session.get(Prompt, pair.prompt_id)
    responses = {
        response.id: response
        for response in await session.scalars(
            select(Response).where(Response.id.in_([pair.response_a_id, pair.response_b_id]))
        )
    }
    assert prompt is not None
    return PairContent(pair, prompt, responses[pair.response_a_id], responses[pair.response_b_id])


def shown_sides(content: PairContent, assignment: Assignment) -> tuple[Response, Response]:
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
