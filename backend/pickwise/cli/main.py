"""The `pickwise` command."""

import logging
import signal
from types import FrameType
from typing import Annotated

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

app = typer.Typer(
    help="pickwise: collect pairwise preferences for reward models and DPO.", no_args_is_help=True
)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(users_cmd.app, name="users")
app.add_typer(projects_cmd.app, name="projects")
app.command("import")(import_cmd.import_file)
app.command("search-catch-up")(import_cmd.search_catch_up)
app.command("export")(export_cmd.export)
app.command("report")(report_cmd.report)
app.command("generate")(generate_cmd.generate)
ops_cmd.register(app)
console = Console()
logger = logging.getLogger("pickwise.serve")


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations (creates the schema on a new database)."""
    from pickwise.cli.runtime import database
    from pickwise.core.migrations import upgrade_head

    upgrade_head(database().url)
    console.print("[green]Database is at the latest migration.[/green]")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: PORT, 8000).")] = None,
    workers: Annotated[int, typer.Option(help="Worker processes.")] = 1,
    migrate: Annotated[bool, typer.Option(help="Apply migrations first.")] = True,
    seed_demo: Annotated[
        bool, typer.Option("--seed-demo", help="Create the demo project.")
    ] = False,
) -> None:
    """Serve the web UI and API (starts the embedded Postgres if DATABASE_URL is unset)."""
    import uvicorn

    from pickwise.cli.runtime import database, run
    from pickwise.core.config import get_settings
    from pickwise.core.logging import configure_logging

    configure_logging()
    # uvicorn hands a SIGTERM it handled back to the previous handler once the app has shut
    # down. Exit normally then, so the embedded Postgres is stopped at exit; the default
    # action would end the process before that and leave the server running.
    signal.signal(signal.SIGTERM, _exit_normally)
    settings = get_settings()
    db = database()
    logger.info(
        "database: %s",
        db.describe(),
        extra={"database": db.describe(), "embedded_database": db.embedded},
    )
    if migrate:
        from pickwise.core.migrations import upgrade_head

        upgrade_head(db.url)
    if seed_demo:
        from pickwise.cli.demo import seed_demo as seed

        run(seed(console))
    host = host or settings.host
    port = port or settings.port
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


def _exit_normally(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def main() -> None:
    app()
