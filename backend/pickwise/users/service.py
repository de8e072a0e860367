from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import end_leases
from pickwise.core.errors import Conflict, InvalidInput
from pickwise.core.security import hash_password, new_pseudonym
from pickwise.models import Assignment, ProjectMember, User

MIN_PASSWORD_LENGTH = 8


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"password: must be at least {MIN_PASSWORD_LENGTH} characters")


async def get_by_email(session: AsyncSession, email: str) -> User | None:
    result = await session.execute(select(User).where(func.lower(User.email) == email.lower()))
    return result.scalar_one_or_none()


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    display_name: str,
    role: str = "rater",
    password: str | None = None,
) -> User:
    if password is not None:
        check_password_strength(password)
    if await get_by_email(session, email) is not None:
        raise Conflict(f"email: an account for {email} already exists")
    user = User(
        email=email.strip(),
        display_name=display_name.strip() or email.split("@")[0],
        role=role,
        password_hash=await hash_password(password) if password else None,
        pseudonym=new_pseudonym(),
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as exc:
        raise Conflict(f"email: an account for {email} already exists") from exc
    return user


async def list_users(session: AsyncSession) -> list[User]:
    return list((await session.execute(select(User).order_by(User.id))).scalars())


async def set_active(session: AsyncSession, user: User, active: bool) -> None:
    """Deactivating ends the account's open leases at once; its sessions and API tokens are
    refused from then on (auth checks the flag on every request)."""
    if user.is_active == active:
        return
    user.is_active = active
    await session.flush()
    if not active:
        await end_leases(session, await _projects_to_stop(session, user.id), rater_id=user.id)


async def _projects_to_stop(session: AsyncSession, user_id: int) -> list[int]:
    """Projects the user works in: those they are a member of or hold a lease in."""
    member_of = select(ProjectMember.project_id).where(ProjectMember.user_id == user_id)
    leased_in = select(Assignment.project_id).where(
        Assignment.rater_id == user_id, Assignment.status == "leased"
    )
    return list((await session.scalars(member_of.union(leased_in))).all())
