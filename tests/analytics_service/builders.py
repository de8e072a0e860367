"""Projects with known votes, written straight through the ORM (fast, and every field is
under the test's control): prompts, pairs of named models, slots, assignments, judgments."""

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
from sqlalchemy import insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.slots_service import create_slots
from pickwise.models import (
    Assignment,
    Batch,
    Judgment,
    Pair,
    PairSlot,
    Project,
    Prompt,
    Response,
    User,
)

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Answer:
    model: str
    content: str


async def make_model_pairs(
    session: AsyncSession,
    project: Project,
    answers: list[tuple[Answer, Answer]],
    *,
    gold: int = 0,
    filename: str = "battles.jsonl",
) -> list[Pair]:
    """One prompt and one pair per entry; the last `gold` pairs are gold with A the winner."""
    batch = Batch(project_id=project.id, filename=filename, sha256="0" * 64, source="cli")
    session.add(batch)
    await session.flush()
    pairs = []
    for number, (first, second) in enumerate(answers):
        prompt = Prompt(
            project_id=project.id,
            batch_id=batch.id,
            external_id=f"b{batch.id}-{number}",
            turns=[{"role": "user", "content": f"Question {number}: how does this work?"}],
            content_hash="0" * 64,
        )
        session.add(prompt)
        await session.flush()
        response_a = Response(
            project_id=project.id,
            prompt_id=prompt.id,
            external_id="a",
            model=first.model,
            content=first.content,
        )
        session.add(response_a)
        await session.flush()  # a is inserted first, so a.id < b.id (canonical order)
        response_b = Response(
            project_id=project.id,
            prompt_id=prompt.id,
            external_id="b",
            model=second.model,
            content=second.content,
        )
        session.add(response_b)
        await session.flush()
        is_gold = number >= len(answers) - gold
        pair = Pair(
            project_id=project.id,
            prompt_id=prompt.id,
            batch_id=batch.id,
            response_a_id=response_a.id,
            response_b_id=response_b.id,
            is_gold=is_gold,
            gold_winner_id=response_a.id if is_gold else None,
        )
        session.add(pair)
        pairs.append(pair)
    await session.flush()
    await create_slots(session, project, batch.id)
    return pairs


@dataclass(frozen=True)
class Vote:
    pair: Pair
    rater: User
    choice: str  # canonical: a, b, tie, both_bad
    left_side: str = "a"
    seconds: float = 12.0
    at: datetime = START


async def add_votes(session: AsyncSession, votes: list[Vote]) -> None:
    """Assignments, consumed slots and judgments for `votes`, in a few bulk statements."""
    if not votes:
        return
    regular = sorted({vote.pair.id for vote in votes if not vote.pair.is_gold})
    open_slots: dict[int, list[int]] = {pair_id: [] for pair_id in regular}
    rows = await session.execute(
        select(PairSlot.pair_id, PairSlot.id)
        .where(PairSlot.pair_id.in_(regular), PairSlot.state == "open")
        .order_by(PairSlot.pair_id, PairSlot.slot_no)
    )
    for pair_id, slot_id in rows:
        open_slots[pair_id].append(slot_id)
    slot_of = [None if vote.pair.is_gold else open_slots[vote.pair.id].pop(0) for vote in votes]
    assignment_ids = (
        await session.scalars(
            insert(Assignment).returning(Assignment.id, sort_by_parameter_order=True),
            [
                {
                    "project_id": vote.pair.project_id,
                    "pair_id": vote.pair.id,
                    "rater_id": vote.rater.id,
                    "slot_id": slot,
                    "status": "submitted",
                    "left_side": vote.left_side,
                    "is_gold": vote.pair.is_gold,
                    "shown_at": vote.at,
                    "lease_expires_at": vote.at + timedelta(minutes=10),
                    "completed_at": vote.at + timedelta(seconds=vote.seconds),
                }
                for vote, slot in zip(votes, slot_of, strict=True)
            ],
        )
    ).all()
    taken = [
        {"id": slot, "state": "done", "assignment_id": assignment_id}
        for slot, assignment_id in zip(slot_of, assignment_ids, strict=True)
        if slot is not None
    ]
    if taken:
        await session.execute(update(PairSlot), taken)
    await session.execute(
        insert(Judgment),
        [
            {
                "project_id": vote.pair.project_id,
                "pair_id": vote.pair.id,
                "assignment_id": assignment_id,
                "rater_id": vote.rater.id,
                "slot_id": slot,
                "is_gold": vote.pair.is_gold,
                "choice": vote.choice,
                "left_side": vote.left_side,
                "shown_at": vote.at,
                "submitted_at": vote.at + timedelta(seconds=vote.seconds),
            }
            for vote, slot, assignment_id in zip(votes, slot_of, assignment_ids, strict=True)
        ],
    )
    await session.flush()


# --- a simulated crowd with a clear-cut leaderboard ------------------------------------

STRENGTHS = {"alpha": 2.0, "beta": 0.7, "gamma": -0.7, "delta": -2.0}


def answer_text(rng: random.Random, model: str) -> str:
    """Answers that differ in length, lists, headings, bold and hedging."""
    words = " ".join(f"word{rng.randint(0, 99)}" for _ in range(rng.randint(5, 80)))
    parts = [f"{model} says: {words}."]
    if rng.random() < 0.4:
        parts.append("- first point\n- second point")
    if rng.random() < 0.2:
        parts.insert(0, "# Answer")
    if rng.random() < 0.3:
        parts.append("This is **important**.")
    if rng.random() < 0.3:
        parts.append("It might depend on the case.")
    return "\n\n".join(parts)


@dataclass
class Crowd:
    project: Project
    pairs: list[Pair]
    gold_pairs: list[Pair]
    good_raters: list[User]
    left_clicker: User
    votes: list[Vote] = field(default_factory=list)

    @property
    def raters(self) -> list[User]:
        return [*self.good_raters, self.left_clicker]


async def simulate_crowd(
    session: AsyncSession, project: Project, raters: list[User], *, seed: int = 3
) -> Crowd:
    """60 regular pairs over 4 models of very different strength, 3 votes each, 6 gold pairs.

    raters[:-1] vote by the Bradley-Terry probabilities (10 % ties, 10-40 s each); the last
    rater always clicks the left answer within 2 s. Each rater votes on 36 regular pairs and
    on every gold pair.
    """
    rng = random.Random(seed)
    models = list(STRENGTHS)
    matchups = [(a, b) for i, a in enumerate(models) for b in models[i + 1 :]]
    answers = []
    for number in range(60):
        first, second = matchups[number % len(matchups)]
        if rng.random() < 0.5:
            first, second = second, first
        answers.append(
            (Answer(first, answer_text(rng, first)), Answer(second, answer_text(rng, second)))
        )
    for _ in range(6):
        answers.append((Answer("alpha", answer_text(rng, "alpha")), Answer("delta", "No.")))
    pairs = await make_model_pairs(session, project, answers, gold=6)
    crowd = Crowd(project, pairs[:60], pairs[60:], raters[:-1], raters[-1])
    teams = [
        [raters[i] for i in team]
        for team in [(a, b, c) for a in range(5) for b in range(a + 1, 5) for c in range(b + 1, 5)]
    ]
    for number, pair in enumerate(crowd.pairs):
        model_a, model_b = answers[number][0].model, answers[number][1].model
        for rater in teams[number % len(teams)]:
            crowd.votes.append(_vote(rng, pair, rater, crowd, model_a, model_b, number))
    for number, pair in enumerate(crowd.gold_pairs):
        for rater in crowd.raters:
            crowd.votes.append(_vote(rng, pair, rater, crowd, "alpha", "delta", number))
    await add_votes(session, crowd.votes)
    return crowd


def _vote(
    rng: random.Random, pair: Pair, rater: User, crowd: Crowd, model_a: str, model_b: str, day: int
) -> Vote:
    left_side = rng.choice("ab")
    at = START + timedelta(days=2 * (day // 20), minutes=rng.randint(0, 600))
    if rater is crowd.left_clicker:
        return Vote(pair, rater, left_side, left_side, rng.uniform(1.0, 2.0), at)
    p_a = 1 / (1 + np.exp(STRENGTHS[model_b] - STRENGTHS[model_a]))
    roll = rng.random()
    choice = "tie" if roll < 0.1 else ("a" if rng.random() < p_a else "b")
    return Vote(pair, rater, choice, left_side, rng.uniform(10.0, 40.0), at)
