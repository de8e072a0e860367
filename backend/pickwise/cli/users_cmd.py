from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from pickwise.core.errors import PickwiseError

if TYPE_CHECKING:
    # Annotations only: SQLAlchemy is imported by the commands that use it, so `--help` and
    # the other commands start without it.
    from sqlalchemy.ext.asyncio import AsyncSession

app = typer.Typer(help="Accounts.", no_args_is_help=True)
console = Console()


@app.command("create")
def create(
    email: Annotated[str, typer.Argument(help="Login email.")],
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password.")
    ],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="Create an admin.")] = False,
    project: Annotated[list[str] | None, typer.Option(help="Project slug to join.")] = None,
) -> None:
    """Create an admin or rater account."""
    from pickwise.cli.runtime import run_or_exit, with_session
    from pickwise.projects.lookup import get_by_slug_or_404
    from pickwise.users import service
    from pickwise.users.email import checked_email
    from pickwise.vocabulary import AccountRole

    async def work(session: "AsyncSession") -> int:
        projects = [await get_by_slug_or_404(session, slug) for slug in project or []]
        user = await service.create_user(
            session,
            # The check POST /api/v1/users and the admin page make.
            email=checked_email(email),
            display_name=name or email.split("@")[0],
            role=AccountRole.ADMIN if admin else AccountRole.RATER,
            password=password,
            project_ids=[chosen.id for chosen in projects],
        )
        return user.id

    user_id = run_or_exit(with_session(work)())
    console.print(f"Created {'admin' if admin else 'rater'} {email} (id {user_id}).")


@app.command("token")
def token(
    email: Annotated[str, typer.Argument(help="Whose token.")],
    name: Annotated[str, typer.Option(help="What the token is for.")] = "cli",
) -> None:
    """Create an API token for a user (printed once)."""
    from pickwise.auth import service as auth_service
    from pickwise.cli.runtime import run_or_exit, with_session
    from pickwise.users import repository

    async def work(session: "AsyncSession") -> str:
        user = await repository.get_by_email(session, email)
        if user is None:
            raise PickwiseError(f"no account for {email}")
        plain, _ = await auth_service.create_api_token(session, user, name)
        return plain

    console.print(run_or_exit(with_session(work)()))
