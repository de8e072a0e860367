"""The `pickwise` command."""

import asyncio
import os
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from pickwise.cli import (
    export_cmd,
    generate_cmd,
    import_cmd,
    ops_cmd,
    projects_cmd,
    report_cmd,
    users_cmd,
)
from pickwise.core.config import get_settings
from pickwise.core.embedded_pg import resolve_database_url

app = typer.Typer(
    help="pickwise: collect pairwise preferences for reward models and DPO.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_cmd.app, name="users")
app.add_typer(projects_cmd.app, name="projects")
app.command("import")(import_cmd.import_file)
app.command("export")(export_cmd.export)
app.command("report")(report_cmd.report)
app.command("generate")(generate_cmd.generate)
ops_cmd.register(app)
console = Console()
T = TypeVar("T")


def database_url() -> str:
    return resolve_database_url(get_settings().pickwise_data_dir)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the schema on a new database)."""
    from pickwise.core.migrations import upgrade_head

    upgrade_head(database_url())
    console.print("[green]Database is at the latest migration.[/green]")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default $PORT or 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations first.")] = True,
    seed_demo: Annotated[
        bool, typer.Option("--seed-demo", help="Create the demo project.")
    ] = False,
) -> None:
    """Serve the web UI and API (starts the embedded Postgres if DATABASE_URL is unset)."""
    import uvicorn

    settings = get_settings()
    url = database_url()
    if migrate:
        from pickwise.core.migrations import upgrade_head

        upgrade_head(url)
    if seed_demo:
        from pickwise.cli.demo import seed_demo as seed

        run(seed(console))
    host = host or settings.host
    port = port or int(os.environ.get("PORT", settings.port))
    console.print(f"[bold]pickwise[/bold] on http://{host}:{port}  (Ctrl-C to stop)")
    uvicorn.run(
        "pickwise.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        # The app logs JSON through the root logger; uvicorn's own config would not.
        log_config=None,
        proxy_headers=True,
    )


def run(coroutine: Awaitable[T]) -> T:
    async def main() -> T:
        from pickwise.core.db import get_engine

        try:
            return await coroutine
        finally:
            await get_engine().dispose()

    return asyncio.run(main())


def with_session(work: Callable[..., Awaitable[T]]) -> Callable[..., Awaitable[T]]:
    """Run `work(session, ...)` in one transaction that commits at the end."""

    async def wrapped(*args: object, **kwargs: object) -> T:
        from pickwise.core.db import get_engine, session_factory

        database_url()
        async with session_factory(get_engine())() as session, session.begin():
            return await work(session, *args, **kwargs)

    return wrapped


def main() -> None:
    app()
