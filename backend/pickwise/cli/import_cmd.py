from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pickwise.batches.parsing.report import ImportRejected
from pickwise.core.errors import PickwiseError

if TYPE_CHECKING:
    # Annotations only: SQLAlchemy is imported by the commands that use it, so `--help` and
    # the other commands start without it.
    from sqlalchemy.ext.asyncio import AsyncSession

    from pickwise.batches.service import ImportOutcome

console = Console()


def show_rejection(exc: ImportRejected) -> None:
    report = exc.report
    table = Table(title=f"{report.error_count} problem(s); nothing was imported")
    table.add_column("line", justify="right")
    table.add_column("field")
    table.add_column("problem")
    for error in report.errors:
        table.add_row(str(error.line or ""), error.field or "", error.message)
    console.print(table)
    hidden = report.error_count - len(report.errors)
    if hidden:
        console.print(f"… and {hidden} more.")


def import_file(
    project: Annotated[str, typer.Argument(help="Project slug.")],
    file: Annotated[Path, typer.Argument(help="JSONL or CSV file.", exists=True, dir_okay=False)],
    format: Annotated[
        str | None, typer.Option(help="jsonl or csv (default: from the name).")
    ] = None,
    search_later: Annotated[
        bool,
        typer.Option(
            "--search-later",
            help="Return once the batch is stored; leave making its answers searchable to "
            "the running app (or `pickwise search-catch-up`).",
        ),
    ] = False,
) -> None:
    """Import a batch of prompts and responses (all or nothing; re-importing adds nothing),
    then make its answers searchable (the batch is ratable from the import's commit on)."""
    from pickwise.cli.runtime import driver_transaction, loading_for_good, run

    # Writes through psycopg alone: no SQLAlchemy or ORM models to load for an import
    # (docs/benchmarks.md, "i26d"), except for a conversations project's openers below.
    with loading_for_good():
        from pickwise.batches import bulk_repository, service
        from pickwise.core.errors import NotFound
        from pickwise.vocabulary import ProjectKind

    if format not in (None, "jsonl", "csv"):
        console.print("[red]error:[/red] --format must be jsonl or csv")
        raise typer.Exit(2)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as bar:
        task = bar.add_task(f"importing {file.name}", total=None)

        def progress(read: int, size: int) -> None:
            bar.update(task, completed=read, total=size)

        async def work() -> service.ImportOutcome:
            async with driver_transaction() as driver:
                found = await bulk_repository.project_by_slug(driver, project)
                if found is None:
                    raise NotFound(f"project {project!r}: no such project")
                target = service.ImportTarget.of(found)
                if target.kind != ProjectKind.CONVERSATIONS:
                    with file.open("rb") as stream:
                        return await service.import_records(
                            driver,
                            target,
                            stream,
                            filename=file.name,
                            source="cli",
                            user_id=None,
                            file_format=format,  # type: ignore[arg-type]
                            progress=progress,
                        )
            return await import_openers_of(project, file)

        try:
            outcome = run(work())
        except ImportRejected as exc:
            bar.stop()
            show_rejection(exc)
            raise typer.Exit(1) from exc
        except PickwiseError as exc:
            bar.stop()
            console.print(f"[red]error:[/red] {exc.detail}")
            raise typer.Exit(1) from exc
    if outcome.nothing_new:
        console.print(f"[yellow]Nothing new[/yellow] in {file.name}: {outcome.summary}")
        return
    console.print(f"[green]Imported[/green] batch {outcome.batch_id}: {outcome.summary}")
    if not search_later:
        search_catch_up()


async def import_openers_of(project: str, file: Path) -> "ImportOutcome":
    """A conversations project's batch: opening messages, written through the ORM."""
    from pickwise.cli.runtime import loading_for_good, with_session

    with loading_for_good():
        from pickwise.batches.service import limits_from_settings
        from pickwise.conversations.openers import import_openers
        from pickwise.projects.lookup import get_by_slug_or_404

    async def work(session: "AsyncSession") -> "ImportOutcome":
        target = await get_by_slug_or_404(session, project)
        with file.open("rb") as stream:
            return await import_openers(
                session,
                target,
                stream,
                filename=file.name,
                source="cli",
                user=None,
                limits=limits_from_settings(),
            )

    return await with_session(work)()


def search_catch_up() -> None:
    """Make every imported answer searchable now (the app also does it in the background)."""
    from pickwise.cli.runtime import database, loading_for_good, run

    with loading_for_good():
        from pickwise.batches.search_catchup import CatchUpReport, catch_up
        from pickwise.core.db import unit_of_work

    database()
    with Progress(TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("making answers searchable", total=None)

        def progress(report: CatchUpReport) -> None:
            bar.update(task, description=f"making answers searchable: {report.answers:,}")

        report = run(catch_up(unit_of_work, progress=progress))
    console.print(
        f"[green]Searchable[/green]: {report.answers:,} answers in {report.seconds:.1f} s"
    )
