import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pickwise.exports.dataset.aggregation import AggregationMode
from pickwise.exports.dataset.formats import ExportFormat

console = Console()


def export(
    project: Annotated[str, typer.Argument(help="Project slug.")],
    format: Annotated[ExportFormat, typer.Option(help="Dataset format.")] = ExportFormat.TRL,
    aggregation: Annotated[
        AggregationMode, typer.Option(help="How votes become pairs.")
    ] = AggregationMode.MAJORITY,
    min_votes: Annotated[int, typer.Option(help="Votes a pair needs.")] = 1,
    min_agreement: Annotated[float, typer.Option(help="Share of votes the winner needs.")] = 0.0,
    test_fraction: Annotated[float, typer.Option(help="Share of prompts in test.jsonl.")] = 0.1,
    seed: Annotated[int, typer.Option(help="Seed of the train/test split.")] = 0,
    batch: Annotated[
        list[int] | None, typer.Option(help="Only this batch id (repeatable).")
    ] = None,
    include_gold: Annotated[bool, typer.Option(help="Keep gold (check) pairs.")] = False,
    include_excluded: Annotated[bool, typer.Option(help="Keep excluded raters' votes.")] = False,
    out: Annotated[Path, typer.Option(help="Folder the export folder goes in.")] = Path("exports"),
) -> None:
    """Write a dataset folder: train.jsonl, test.jsonl, README.md (dataset card), manifest.json."""
    from pickwise.cli.runtime import database, run_or_exit, with_session
    from pickwise.core.db import get_read_engine, session_factory
    from pickwise.exports import repository, service
    from pickwise.exports.schemas import ExportQuery
    from pickwise.projects import service as projects_service
    from pickwise.webhooks.service import queue_export_written

    try:
        query = ExportQuery(
            format=format,
            aggregation=aggregation,
            min_votes=min_votes,
            min_agreement=min_agreement,
            test_fraction=test_fraction,
            seed=seed,
            batch_id=batch or [],
            include_gold=include_gold,
            include_excluded=include_excluded,
        )
    except ValidationError as exc:
        for error in exc.errors():
            console.print(
                f"[red]error:[/red] --{error['loc'][0]}: {error['msg']}".replace("_", "-")
            )
        raise typer.Exit(2) from exc
    database()
    out.mkdir(parents=True, exist_ok=True)
    command = "pickwise export " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else None

    async def work() -> service.ExportResult:
        engine = get_read_engine()
        async with session_factory(engine)() as session:
            target = await projects_service.get_by_slug_or_404(session, project)
        selection = query.selection(target.id)
        async with engine.connect() as connection, connection.begin():
            total = await repository.count_votes_at_most(connection, selection)
            with Progress(
                TextColumn("exporting"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task("votes", total=total)
                result = await service.write_folder(
                    connection,
                    target,
                    selection,
                    query.options(),
                    out,
                    command=command,
                    progress=lambda done: bar.update(task, completed=done),
                )
                # The total counted votes of removed pairs and other batches too.
                read = result.stats.votes_read
                bar.update(task, total=read, completed=read)
        await with_session(queue_export_written)(target, result.path, result.manifest)
        return result

    result = run_or_exit(work())
    stats = result.stats
    console.print(f"[green]Wrote[/green] {result.path}")
    console.print(
        f"  {stats.kept:,} kept ({query.options().unit}s) from {stats.votes_read:,} votes"
    )
    for reason, count in sorted(stats.dropped.items()):
        console.print(f"  {count:,} left out: {reason}")
