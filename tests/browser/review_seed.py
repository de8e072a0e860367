"""A small project to review in Chromium: an admin, four raters, pairs in every state (a
clear win, a dispute, a flag, gold) with votes, rationales and criteria."""

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from pickwise.assignments.slots_service import create_slots
from pickwise.models import Batch, PairFlag, Project, User
from tests.browser.conftest import CONVERSATIONS, SYSTEM_PROMPT
from tests.factories import PASSWORD, add_member, make_pair, make_project, make_user
from tests.review.helpers import vote

MORE = [
    (
        "Is it safe to eat raw cookie dough?",
        "Raw dough can carry *E. coli* from flour and *Salmonella* from eggs, so it is "
        "safest not to eat it raw. Heat-treated flour and egg-free recipes avoid both.",
        "Yes, it's totally fine. Everyone does it.",
    ),
    (
        "Write a haiku about autumn.",
        "Crisp leaves drift and fall\nthe maple burns red and gold\nwind hums through bare trees",
        "Autumn is a season that comes after summer and before winter, when leaves fall.",
    ),
    (
        "How many bytes are in a kilobyte?",
        "1,000 bytes in the SI definition; 1,024 bytes (a *kibibyte*, KiB) in the binary one.",
        "1024.",
    ),
    (
        "Explain recursion to a child.",
        "Recursion is when something is defined using a smaller copy of itself, like Russian "
        "dolls: to open the big doll you open the smaller doll inside, until the tiniest one.",
        "Recursion: see *recursion*.",
    ),
]
MODELS = ("model-alpha", "model-beta", "model-gamma")
# Choices per pair, in order, by raters 0.. (None: no vote).
VOTES = [
    ["a", "a", "b"],
    ["a", "b", "tie"],  # disputed
    ["b", "b", "b"],
    ["a"],
    ["a", "a", "a"],  # gold
    ["both_bad", "b", "a"],  # disputed
    ["a", "a", "tie"],
    [],
]
RATIONALES = {
    (1, 0): "A answers the question; B talks around it.",
    (1, 1): "B is shorter and still right.",
    (5, 0): "Neither explains it properly.",
    (0, 2): "B's list is easier to scan.",
}


@dataclass(frozen=True)
class ReviewSetup:
    project_id: int
    admin_email: str
    disputed_pair_ids: list[int]
    rater_ids: list[int]


async def seed_review_project(engine: AsyncEngine) -> ReviewSetup:
    async with AsyncSession(engine, expire_on_commit=False) as session:
        admin: User = await make_user(session, role="admin", password=PASSWORD)
        admin.display_name = "Grace"
        project: Project = await make_project(
            session,
            raters_per_pair=3,
            strength_scale=["slightly", "clearly", "much"],
            criteria=["accuracy", "clarity"],
        )
        project.name = "Helpfulness, round 2"
        raters = []
        for name in ("Ada", "Alan", "Barbara", "Edsger"):
            rater = await make_user(session, password=PASSWORD)
            rater.display_name = name
            await add_member(session, project, rater)
            raters.append(rater)
        batch = Batch(
            project_id=project.id, filename="round-2.jsonl", sha256="0" * 64, source="cli"
        )
        session.add(batch)
        await session.flush()
        pairs = []
        for number, (question, first, second) in enumerate([*CONVERSATIONS, *MORE]):
            pair = await make_pair(
                session,
                project,
                batch.id,
                external_id=f"q{number}",
                question=question,
                answers=(
                    (MODELS[number % len(MODELS)], first),
                    (MODELS[(number + 1) % len(MODELS)], second),
                ),
                system=SYSTEM_PROMPT if number % 2 == 0 else None,
                gold=number == 4,
            )
            pairs.append(pair)
        await session.flush()
        await create_slots(session, project, batch.id)
        for index, (pair, choices) in enumerate(zip(pairs, VOTES, strict=True)):
            for rater_index, choice in enumerate(choices):
                decisive = choice in ("a", "b")
                await vote(
                    session,
                    pair,
                    raters[rater_index],
                    choice,
                    rationale=RATIONALES.get((index, rater_index)),
                    left_side="ab"[(index + rater_index) % 2],
                    seconds=8.0 + 3 * rater_index + index,
                    strength=(rater_index % 3) if decisive else None,
                    criteria={"accuracy": choice if decisive else "tie"},
                )
        flagged = pairs[3]
        flagged.status = "flagged"
        session.add(
            PairFlag(
                project_id=project.id,
                pair_id=flagged.id,
                rater_id=raters[1].id,
                reason="other",
                note="The answer is cut off.",
            )
        )
        await session.commit()
        return ReviewSetup(
            project.id, admin.email, [pairs[1].id, pairs[5].id], [r.id for r in raters]
        )
