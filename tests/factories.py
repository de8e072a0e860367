"""Test data made through the ORM, on the test's session."""

import itertools
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.slots_service import create_slots
from pickwise.auth import service as auth_service
from pickwise.core.security import new_pseudonym
from pickwise.models import (
    Batch,
    Pair,
    Project,
    ProjectMember,
    ProjectRaterExclusion,
    Prompt,
    Response,
    User,
)

_counter = itertools.count(1)
PASSWORD = "correct horse battery"


async def make_user(
    session: AsyncSession,
    *,
    role: str = "rater",
    password: str | None = None,
    email: str | None = None,
) -> User:
    from pickwise.core.security import hash_password_now

    n = next(_counter)
    user = User(
        email=email or f"user{n}@example.org",
        display_name=f"User {n}",
        role=role,
        password_hash=hash_password_now(password) if password else None,
        pseudonym=new_pseudonym(),
    )
    session.add(user)
    await session.flush()
    return user


async def make_project(session: AsyncSession, **settings: Any) -> Project:
    n = next(_counter)
    project = Project(slug=settings.pop("slug", f"project-{n}"), name=f"Project {n}", **settings)
    session.add(project)
    await session.flush()
    return project


async def add_member(session: AsyncSession, project: Project, user: User) -> None:
    session.add(ProjectMember(project_id=project.id, user_id=user.id))
    await session.flush()


async def exclude(session: AsyncSession, project: Project, user: User) -> None:
    """Leaves the user's votes out of the project's exports and statistics."""
    session.add(ProjectRaterExclusion(project_id=project.id, user_id=user.id))
    await session.flush()


async def is_excluded(session: AsyncSession, project_id: int, user_id: int) -> bool:
    return await session.get(ProjectRaterExclusion, (project_id, user_id)) is not None


async def make_pair(
    session: AsyncSession,
    project: Project,
    batch_id: int,
    *,
    external_id: str,
    question: str,
    answers: tuple[tuple[str, str], tuple[str, str]],
    system: str | None = None,
    response_ids: tuple[str, str] = ("0", "1"),
    gold: bool = False,
    **pair_fields: Any,
) -> Pair:
    """One prompt (one user turn), its two responses (`answers`: model and text, A then B)
    and their pair; a gold pair's winner is A. `pair_fields` go to the pair as they are."""
    prompt = Prompt(
        project_id=project.id,
        batch_id=batch_id,
        external_id=external_id,
        system=system,
        turns=[{"role": "user", "content": question}],
        content_hash="0" * 64,
    )
    session.add(prompt)
    await session.flush()
    responses = [
        Response(
            project_id=project.id,
            prompt_id=prompt.id,
            external_id=response_id,
            model=model,
            content=content,
        )
        for response_id, (model, content) in zip(response_ids, answers, strict=True)
    ]
    session.add_all(responses)
    await session.flush()
    pair = Pair(
        project_id=project.id,
        prompt_id=prompt.id,
        batch_id=batch_id,
        response_a_id=responses[0].id,
        response_b_id=responses[1].id,
        is_gold=gold,
        gold_winner_id=responses[0].id if gold else None,
        **pair_fields,
    )
    session.add(pair)
    await session.flush()
    return pair


async def make_pairs(
    session: AsyncSession,
    project: Project,
    count: int,
    *,
    gold: int = 0,
    models: tuple[str, str] = ("model-x", "model-y"),
) -> list[Pair]:
    """`count` prompts with two responses each and one pair per prompt (the last `gold` are
    gold pairs whose winner is response a)."""
    batch = Batch(project_id=project.id, filename="factory.jsonl", sha256="0" * 64, source="cli")
    session.add(batch)
    await session.flush()
    pairs = [
        await make_pair(
            session,
            project,
            batch.id,
            external_id=f"p{batch.id}-{i}",
            question=f"Question {i}?",
            answers=(
                (models[0], f"Answer 0 to question {i}."),
                (models[1], f"Answer 1 to question {i}."),
            ),
            gold=i >= count - gold,
        )
        for i in range(count)
    ]
    await create_slots(session, project, batch.id)
    return pairs


async def bearer_headers(session: AsyncSession, user: User) -> dict[str, str]:
    """Headers that authenticate as `user` over the API (a new API token)."""
    token, _ = await auth_service.create_api_token(session, user, "test")
    return {"Authorization": f"Bearer {token}"}
