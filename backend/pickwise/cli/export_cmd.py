import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from pickwise.exports.dataset.aggregation import AggregationMode
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.vocabulary import PairState

console = Console()
FILTER = "Which pairs (the pairs explorer's filter)"


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
    # The pairs explorer's filter (docs/review.md): the same selection as the admin page.
    status: Annotated[
        list[PairState] | None,
        typer.Option(
            help="Only pairs in any of these states (repeatable).", rich_help_panel=FILTER
        ),
    ] = None,
    model: Annotated[
        str | None, typer.Option(help="A model on either side.", rich_help_panel=FILTER)
    ] = None,
    versus: Annotated[
        str | None, typer.Option(help="With --model: that pair of models.", rich_help_panel=FILTER)
    ] = None,
    agreement_max: Annotated[
        float | None, typer.Option(help="Agreement at or below this.", rich_help_panel=FILTER)
    ] = None,
    tie: Annotated[
        bool | None, typer.Option(help="Has a tie vote (or none).", rich_help_panel=FILTER)
    ] = None,
    both_bad: Annotated[
        bool | None, typer.Option(help="Has a both-bad vote (or none).", rich_help_panel=FILTER)
    ] = None,
    flagged: Annotated[
        bool | None, typer.Option(help="Has an open flag (or none).", rich_help_panel=FILTER)
    ] = None,
    gold: Annotated[
        bool | None, typer.Option(help="Is a gold pair (or not).", rich_help_panel=FILTER)
    ] = None,
    rationale: Annotated[
        bool | None, typer.Option(help="Has a rationale (or none).", rich_help_panel=FILTER)
    ] = None,
    rater: Annotated[
        int | None, typer.Option(help="Voted on by this user id.", rich_help_panel=FILTER)
    ] = None,
    created_from: Annotated[
        str | None, typer.Option(help="Created on or after (YYYY-MM-DD).", rich_help_panel=FILTER)
    ] = None,
    created_to: Annotated[
        str | None,
        typer.Option(help="Created on or before (YYYY-MM-DD).", rich_help_panel=FILTER),
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(help="Words in the prompt, answers or rationales.", rich_help_panel=FILTER),
    ] = None,
) -> None:
    """Write a dataset folder: train.jsonl, test.jsonl, README.md (dataset card), manifest.json.

    The filter options select pairs as the pairs explorer does ("Export this selection");
    pairs an admin adjudicated are exported as decided."""
    from pydantic import ValidationError

    from pickwise.cli.runtime import database, run_or_exit, with_session
    from pickwise.core.db import get_read_engine, session_factory
    from pickwise.exports import repository, service
    from pickwise.exports.schemas import ExportQuery
    from pickwise.projects.lookup import get_by_slug_or_404
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
            status=status or [],
            model=model,
            versus=versus,
            agreement_max=agreement_max,
            tie=tie,
            both_bad=both_bad,
            flagged=flagged,
            gold=gold,
            rationale=rationale,
            rater=rater,
            created_from=created_from,
            created_to=created_to,
            q=search,
        )
    except ValidationError as exc:
        for error in exc.errors():
            flag = "search" if error["loc"][0] == "q" else str(error["loc"][0])
            message = str(error["msg"]).removeprefix("Value error, ")
            console.print(f"[red]error:[/red] --{flag.replace('_', '-')}: {message}")
        raise typer.Exit(2) from exc
    database()
    out.mkdir(parents=True, exist_ok=True)
    command = "pickwise export " + shlex.join(sys.argv[2:]) if len(sys.argv) > 2 else None

    async def work() -> service.ExportResult:
        engine = get_read_engine()
        async with session_factory(engine)() as session:
            target = await get_by_slug_or_404(session, project)
        async with engine.connect() as connection, connection.begin():
            selection = await service.selection_for(connection, target, query)
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
                    record=query.record(),
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
