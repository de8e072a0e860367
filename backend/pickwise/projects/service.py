from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import end_leases, reorder_queue, resize_slots
from pickwise.core.db import add_unique
from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.models import Project, User
from pickwise.models.base import apply_changes
from pickwise.projects import repository
from pickwise.projects.schemas import ProjectCreate, ProjectUpdate
from pickwise.vocabulary import ProjectKind


async def create_project(session: AsyncSession, data: ProjectCreate) -> Project:
    taken = Conflict(f"a project called {data.slug!r} already exists", field="slug")
    if await repository.get_by_slug(session, data.slug) is not None:
        raise taken
    project = Project(**data.model_dump())
    await add_unique(session, project, taken)
    return project


async def update_project(session: AsyncSession, project: Project, data: ProjectUpdate) -> Project:
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    new_k = changes.get("raters_per_pair")
    if project.kind == ProjectKind.CONVERSATIONS:
        # Each turn is judged by its author alone (docs/conversations.md).
        for field, allowed in (("raters_per_pair", 1), ("gold_rate", 0)):
            if changes.get(field, allowed) != allowed:
                raise InvalidInput(f"must be {allowed} in a conversation project", field=field)
    closing = changes.get("is_archived") is True and not project.is_archived
    before = (project.pair_order, project.pairing_seed)
    apply_changes(project, changes)
    await session.flush()
    if (project.pair_order, project.pairing_seed) != before:
        await reorder_queue(session, project)
    if new_k is not None:
        await resize_slots(session, project)
    if closing:
        # A closed project collects nothing more: every lease ends and its slot is freed.
        await end_leases(session, [project.id])
    return project


async def get_by_slug_or_404(session: AsyncSession, slug: str) -> Project:
    project = await repository.get_by_slug(session, slug)
    if project is None:
        raise NotFound(f"project {slug!r}: no such project")
    return project


async def add_member(session: AsyncSession, project: Project, user: User) -> None:
    await repository.add_members(session, [project.id], user.id)


async def remove_member(session: AsyncSession, project: Project, user_id: int) -> None:
    """The rater leaves the project: the pair they hold (if any) goes back to the pool now,
    and a choice they send for it later is refused."""
    member = await repository.member(session, project.id, user_id)
    if member is None:
        raise NotFound(f"user {user_id} is not a member of this project")
    await session.delete(member)
    await session.flush()
    await end_leases(session, [project.id], rater_id=user_id)


async def set_excluded(
    session: AsyncSession, project: Project, user_id: int, excluded: bool
) -> None:
    member = await repository.member(session, project.id, user_id)
    if member is None:
        raise NotFound(f"user {user_id} is not a member of this project")
    member.excluded = excluded
    await session.flush()
