from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.models import Assignment, ProjectMember, User
from pickwise.vocabulary import AssignmentStatus


async def get(session: AsyncSession, user_id: int) -> User | None:
    return await session.get(User, user_id)


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    """Emails are one account whatever their letter case (a unique index on lower(email))."""
    return await session.scalar(select(User).where(func.lower(User.email) == email.lower()))


async def list_all(session: AsyncSession) -> Sequence[User]:
    return (await session.scalars(select(User).order_by(User.id))).all()


async def projects_worked_in(session: AsyncSession, user_id: int) -> list[int]:
    """Projects the user works in: those they are a member of or hold a lease in."""
    member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)
    leased_in = select(Assignment.project_id).where(
        Assignment.rater_id == user_id, Assignment.status == AssignmentStatus.LEASED
    )
    return list((await session.scalars(member_of.union(leased_in))).all())
