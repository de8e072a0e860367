from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import end_leases, reorder_queue, resize_slots
from pickwise.core.db import add_unique
from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.models import Project, User
from pickwise.models.base import apply_changes
from pickwise.overlap.rules import OVERLAP_SETTINGS
from pickwise.overlap.service import apply_policy
from pickwise.projects import repository
from pickwise.projects.schemas import ProjectCreate, ProjectUpdate
from pickwise.vocabulary import OverlapMode, ProjectKind


async def create_project(session: AsyncSession, data: ProjectCreate) -> Project:
    taken = Conflict(f"a project called {data.slug!r} already exists", field="slug")
    if await repository.get_by_slug(session, data.slug) is not None:
        raise taken
    project = Project(**data.model_dump())
    await add_unique(session, project, taken)
    return project


async def update_project(session: AsyncSession, project: Project, data: ProjectUpdate) -> Project:
    """Changes the settings sent. A new k resizes every pair of a fixed project (as always);
    a new overlap policy (adaptive, or a switch of mode) applies to the pairs not yet settled
    (overlap.service.apply_policy). In an adaptive project k is only the baseline its cost is
    compared with."""
    changes = data.model_dump(exclude_unset=True, exclude_none=True)
    minimum = changes.get("overlap_min", project.overlap_min)
    if changes.get("overlap_max", project.overlap_max) < minimum:
        raise InvalidInput(f"must be at least the minimum ({minimum})", field="overlap_max")
    was_adaptive = project.overlap_mode == OverlapMode.ADAPTIVE
    new_policy = any(
        name in changes and changes[name] != getattr(project, name) for name in OVERLAP_SETTINGS
    )
    new_k = changes.get("raters_per_pair")
    if project.kind == ProjectKind.CONVERSATIONS:
        # Each turn is judged by its author alone (docs/conversations.md).
        # Adaptive overlap would open slots for other raters, so it stays fixed.
        only: tuple[tuple[str, object], ...] = (
            ("raters_per_pair", 1),
            ("gold_rate", 0),
            ("overlap_mode", OverlapMode.FIXED),
        )
        for field, allowed in only:
            if changes.get(field, allowed) != allowed:
                raise InvalidInput(f"must be {allowed} in a conversation project", field=field)
    closing = changes.get("is_archived") is True and not project.is_archived
    before = (project.pair_order, project.pairing_seed)
    apply_changes(project, changes)
    await session.flush()
    if (project.pair_order, project.pairing_seed) != before:
        await reorder_queue(session, project)
    is_adaptive = project.overlap_mode == OverlapMode.ADAPTIVE
    if new_policy and (was_adaptive or is_adaptive):
        await apply_policy(session, project)
    elif new_k is not None and not is_adaptive:
        await resize_slots(session, project)
    if closing:
        # A closed project collects nothing more: every lease ends and its slot is freed.
        await end_leases(session, [project.id])
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
    """Leaves the rater's votes out of exports, statistics and the explorer's counts, or
    counts them again. The exclusion belongs to the rater in the project, not to their
    membership: it outlives their removal, and a former member's votes can be excluded."""
    if not await repository.is_rater(session, project.id, user_id):
        raise NotFound(f"user {user_id} is neither a member nor a rater of this project")
    await repository.set_excluded(session, project.id, user_id, excluded)
