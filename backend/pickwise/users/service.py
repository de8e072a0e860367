from collections.abc import Sequence

from sqlalchemy.ext.asyncio import AsyncSession

from pickwise.assignments.service import end_leases
from pickwise.core.db import add_unique
from pickwise.core.errors import Conflict, InvalidInput, NotFound
from pickwise.core.security import hash_password, new_pseudonym
from pickwise.models import User
from pickwise.projects import repository as projects_repository
from pickwise.users import repository
from pickwise.vocabulary import AccountRole

MIN_PASSWORD_LENGTH = 8


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"must be at least {MIN_PASSWORD_LENGTH} characters", field="password")


async def create_user(
    session: AsyncSession,
    *,
    email: str,
    display_name: str,
    role: AccountRole = AccountRole.RATER,
    password: str | None = None,
    project_ids: Sequence[int] = (),
) -> User:
    """Create an account and make it a member of `project_ids`: the one way in for accounts
    from the API, the admin page, the CLI, invites and study links.

    The projects are checked first, so a refusal leaves nothing behind even where the caller
    catches it and its transaction commits (a page that shows the problem)."""
    missing = await projects_repository.missing_ids(session, project_ids)
    if missing:
        raise NotFound(f"project {missing[0]} does not exist", field="project_ids")
    if password is not None:
        check_password_strength(password)
    taken = Conflict(f"an account for {email} already exists", field="email")
    if await repository.get_by_email(session, email) is not None:
        raise taken
    user = User(
        email=email.strip(),
        display_name=display_name.strip() or email.split("@")[0],
        role=role,
        password_hash=await hash_password(password) if password else None,
        pseudonym=new_pseudonym(),
    )
    await add_unique(session, user, taken)
    await projects_repository.add_members(session, project_ids, user.id)
    return user


async def set_active(session: AsyncSession, user: User, active: bool) -> None:
    """Deactivating ends the account's open leases at once; its sessions and API tokens are
    refused from then on (auth checks the flag on every request)."""
    if user.is_active == active:
        return
    user.is_active = active
    await session.flush()
    if not active:
        projects = await repository.projects_worked_in(session, user.id)
        await end_leases(session, projects, rater_id=user.id)
