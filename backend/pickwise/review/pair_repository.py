"""One pair as an admin reviews it: its texts, every vote, skip, flag, slot and lease, and its
adjudications (read and written)."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pickwise.models import (
    Adjudication,
    Assignment,
    Batch,
    Judgment,
    Pair,
    PairFlag,
    PairSlot,
    ProjectRaterExclusion,
    Prompt,
    ReplacedDecision,
    Response,
    User,
)


@dataclass(frozen=True)
class PairTexts:
    pair: Pair
    prompt: Prompt
    response_a: Response
    response_b: Response
    batch: Batch


async def pair_texts(session: AsyncSession, project_id: int, pair_id: int) -> PairTexts | None:
    response_a, response_b = aliased(Response), aliased(Response)
    row = (
        await session.execute(
            select(Pair, Prompt, response_a, response_b, Batch)
            .join(Prompt, Prompt.id == Pair.prompt_id)
            .join(response_a, response_a.id == Pair.response_a_id)
            .join(response_b, response_b.id == Pair.response_b_id)
            .join(Batch, Batch.id == Pair.batch_id)
            .where(Pair.id == pair_id, Pair.project_id == project_id)
        )
    ).first()
    return None if row is None else PairTexts(*row)


@dataclass(frozen=True)
class Rater:
    user_id: int
    pseudonym: str
    display_name: str
    email: str
    excluded: bool  # from this project's votes (exports, statistics)


def _rater_columns() -> tuple[Any, ...]:
    return (
        User.id,
        User.pseudonym,
        User.display_name,
        User.email,
        ProjectRaterExclusion.user_id.is_not(None),
    )


def _with_rater(model: Any) -> Select[Any]:
    """`model`'s rows, each with who made it and whether their votes are excluded here."""
    return (
        select(model, *_rater_columns())
        .join(User, User.id == model.rater_id)
        .outerjoin(
            ProjectRaterExclusion,
            (ProjectRaterExclusion.project_id == model.project_id)
            & (ProjectRaterExclusion.user_id == model.rater_id),
        )
    )


def _rater(row: Sequence[Any]) -> Rater:
    user_id, pseudonym, display_name, email, excluded = row
    return Rater(user_id, pseudonym, display_name, email, bool(excluded))


async def votes(session: AsyncSession, pair_id: int) -> list[tuple[Judgment, Rater]]:
    """Every judgment of the pair in the order it was submitted."""
    rows = await session.execute(
        _with_rater(Judgment)
        .where(Judgment.pair_id == pair_id)
        .order_by(Judgment.submitted_at, Judgment.id)
    )
    return [(row[0], _rater(row[1:])) for row in rows]


async def assignments(
    session: AsyncSession, pair_id: int, statuses: Sequence[str]
) -> list[tuple[Assignment, Rater]]:
    """The pair's assignments in these states (skipped, leased, ...), oldest first."""
    rows = await session.execute(
        _with_rater(Assignment)
        .where(Assignment.pair_id == pair_id, Assignment.status.in_(list(statuses)))
        .order_by(Assignment.shown_at, Assignment.id)
    )
    return [(row[0], _rater(row[1:])) for row in rows]


async def flags(session: AsyncSession, pair_id: int) -> list[tuple[PairFlag, Rater]]:
    rows = await session.execute(
        _with_rater(PairFlag)
        .where(PairFlag.pair_id == pair_id)
        .order_by(PairFlag.created_at, PairFlag.id)
    )
    return [(row[0], _rater(row[1:])) for row in rows]


async def changes(session: AsyncSession, pair_id: int) -> list[tuple[ReplacedDecision, Rater]]:
    """The choices and skips raters replaced on the pair within the undo window, oldest first."""
    rows = await session.execute(
        _with_rater(ReplacedDecision)
        .where(ReplacedDecision.pair_id == pair_id)
        .order_by(ReplacedDecision.id)
    )
    return [(row[0], _rater(row[1:])) for row in rows]


async def slots(session: AsyncSession, pair_id: int) -> list[tuple[PairSlot, str | None]]:
    """The pair's slots with the pseudonym of the rater holding or having filled each."""
    rows = await session.execute(
        select(PairSlot, User.pseudonym)
        .outerjoin(Assignment, Assignment.id == PairSlot.assignment_id)
        .outerjoin(User, User.id == Assignment.rater_id)
        .where(PairSlot.pair_id == pair_id)
        .order_by(PairSlot.slot_no)
    )
    return [(row[0], row[1]) for row in rows]


async def adjudications(session: AsyncSession, pair_id: int) -> list[Adjudication]:
    """Every decision recorded on the pair, oldest first."""
    rows = await session.scalars(
        select(Adjudication).where(Adjudication.pair_id == pair_id).order_by(Adjudication.id)
    )
    return list(rows)


async def user_names(session: AsyncSession, user_ids: set[int]) -> dict[int, str]:
    if not user_ids:
        return {}
    rows = await session.execute(
        select(User.id, User.display_name).where(User.id.in_(sorted(user_ids)))
    )
    return {row[0]: row[1] for row in rows}


async def lock_pair(session: AsyncSession, project_id: int, pair_id: int) -> Pair | None:
    """The pair, locked for its adjudication (no other decision on it meanwhile). FOR NO KEY
    UPDATE: raters storing votes on it (a key-share lock) are not held up."""
    return await session.scalar(
        select(Pair)
        .where(Pair.id == pair_id, Pair.project_id == project_id)
        .with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    )


async def current_adjudication(session: AsyncSession, pair_id: int) -> Adjudication | None:
    return await session.scalar(
        select(Adjudication)
        .where(Adjudication.pair_id == pair_id, Adjudication.is_current)
        .execution_options(populate_existing=True)
    )
