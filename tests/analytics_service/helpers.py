"""Shared setup: a project with the simulated crowd, and the same votes read back through
the ORM so tests can feed them to the pure statistics functions themselves."""

from dataclasses import dataclass

import numpy as np
from httpx import AsyncClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from pickwise.analytics.labels import CHOICE_A, CHOICE_B, NO_GOLD
from pickwise.analytics.rater_judgments import RaterJudgments
from pickwise.analytics.repository import prompt_text
from pickwise.models import (
    Judgment,
    Pair,
    ProjectMember,
    ProjectRaterExclusion,
    Prompt,
    Response,
    User,
)
from tests.analytics.choice_codes import encode_choices
from tests.analytics_service.builders import Crowd, simulate_crowd
from tests.factories import add_member, bearer_headers, make_project, make_user


@dataclass
class Setup:
    """Plain ids next to the ORM objects: a refused request rolls the test session back,
    which expires loaded objects, and an expired attribute cannot load outside SQLAlchemy's
    async context."""

    crowd: Crowd
    project_id: int
    left_clicker_id: int
    good_rater_ids: list[int]
    admin_headers: dict[str, str]
    rater_headers: dict[str, str]

    def url(self, section: str) -> str:
        return f"/api/v1/projects/{self.project_id}/analytics/{section}"


async def crowd_project(client: AsyncClient, session: AsyncSession, **settings: object) -> Setup:
    project = await make_project(session, raters_per_pair=3, **settings)
    raters = []
    for _ in range(5):
        rater = await make_user(session)
        await add_member(session, project, rater)
        raters.append(rater)
    crowd = await simulate_crowd(session, project, raters)
    admin = await make_user(session, role="admin")
    setup = Setup(
        crowd=crowd,
        project_id=project.id,
        left_clicker_id=crowd.left_clicker.id,
        good_rater_ids=[rater.id for rater in crowd.good_raters],
        admin_headers=await bearer_headers(session, admin),
        rater_headers=await bearer_headers(session, raters[0]),
    )
    # Only releases the test's savepoint (the test is still rolled back at the end), so a
    # refused request, which rolls back to the last commit, keeps the setup.
    await session.commit()
    return setup


@dataclass(frozen=True)
class VoteRow:
    judgment_id: int
    rater_id: int
    pair_id: int
    batch_id: int
    choice: str
    left_side: str
    seconds: float
    is_gold: bool
    gold_choice: int
    model_a: str
    model_b: str
    text_a: str
    text_b: str
    prompt: str
    excluded: bool


async def votes_of(session: AsyncSession, project_id: int) -> list[VoteRow]:
    response_a, response_b = aliased(Response), aliased(Response)
    rows = await session.execute(
        select(
            Judgment,
            Pair,
            response_a,
            response_b,
            Prompt.turns,
            ProjectRaterExclusion.user_id.is_not(None),
        )
        .join(Pair, Pair.id == Judgment.pair_id)
        .join(response_a, response_a.id == Pair.response_a_id)
        .join(response_b, response_b.id == Pair.response_b_id)
        .join(Prompt, Prompt.id == Pair.prompt_id)
        .outerjoin(
            ProjectRaterExclusion,
            (ProjectRaterExclusion.project_id == Judgment.project_id)
            & (ProjectRaterExclusion.user_id == Judgment.rater_id),
        )
        .where(Judgment.project_id == project_id)
        .order_by(Judgment.id)
    )
    votes = []
    for judgment, pair, a, b, turns, excluded in rows:
        gold = NO_GOLD
        if judgment.is_gold:
            gold = CHOICE_A if pair.gold_winner_id == pair.response_a_id else CHOICE_B
        votes.append(
            VoteRow(
                judgment_id=judgment.id,
                rater_id=judgment.rater_id,
                pair_id=pair.id,
                batch_id=pair.batch_id,
                choice=judgment.choice,
                left_side=judgment.left_side,
                seconds=(judgment.submitted_at - judgment.shown_at).total_seconds(),
                is_gold=judgment.is_gold,
                gold_choice=gold,
                model_a=a.model,
                model_b=b.model,
                text_a=a.content,
                text_b=b.content,
                prompt=prompt_text(turns),
                excluded=bool(excluded),
            )
        )
    return votes


def rater_judgments(votes: list[VoteRow], rater_ids: list[int]) -> RaterJudgments:
    index = {rater_id: position for position, rater_id in enumerate(rater_ids)}
    return RaterJudgments(
        rater=np.array([index[v.rater_id] for v in votes], dtype=np.int64),
        item=np.array([v.pair_id for v in votes], dtype=np.int64),
        choice=encode_choices(v.choice for v in votes),
        a_shown_left=np.array([v.left_side == "a" for v in votes]),
        seconds=np.array([v.seconds for v in votes]),
        gold_choice=np.array([v.gold_choice for v in votes], dtype=np.int64),
        a_longer=np.sign([len(v.text_a.encode()) - len(v.text_b.encode()) for v in votes]).astype(
            np.int64
        ),
    )


async def user_ids(session: AsyncSession, project_id: int) -> list[int]:
    """Members and judges in id order, as the rater table lists them."""
    members = set(
        await session.scalars(
            select(ProjectMember.user_id).where(ProjectMember.project_id == project_id)
        )
    )
    judges = set(
        await session.scalars(select(Judgment.rater_id).where(Judgment.project_id == project_id))
    )
    return sorted(members | judges)


async def display_names(session: AsyncSession, ids: list[int]) -> dict[int, str]:
    rows = await session.execute(select(User.id, User.display_name).where(User.id.in_(ids)))
    return dict(rows.all())
