import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from pickwise.batches.parsing.report import ImportRejected
from pickwise.core.errors import PickwiseError

if TYPE_CHECKING:
    from pickwise.batches.service import ImportOutcome
    from pickwise.generation.runner import GenerationReport

console = Console()


def _show_invalid(report: "GenerationReport") -> None:
    table = Table(title=f"{report.invalid.count} problem(s); no endpoint was called")
    table.add_column("line", justify="right")
    table.add_column("field")
    table.add_column("problem")
    for error in report.invalid.kept:
        table.add_row(str(error.line or ""), error.field or "", error.message)
    console.print(table)


def _show_failures(report: "GenerationReport") -> None:
    table = Table(title=f"{report.failure_count} prompt(s) left out: an answer is missing")
    table.add_column("line", justify="right")
    table.add_column("prompt id")
    table.add_column("problem")
    for failure in report.failures:
        table.add_row(str(failure.line), failure.prompt_id, "\n".join(failure.problems))
    console.print(table)
    hidden = report.failure_count - len(report.failures)
    if hidden:
        console.print(f"… and {hidden} more.")


def generate(
    project: Annotated[str, typer.Argument(help="Project slug.")],
    file: Annotated[
        Path,
        typer.Argument(
            help="JSONL: lines with id and prompt or messages (and no responses).",
            exists=True,
            dir_okay=False,
        ),
    ],
    endpoint: Annotated[
        list[str] | None,
        typer.Option(help="Only this endpoint (by name; repeatable). Default: all active."),
    ] = None,
    samples: Annotated[int, typer.Option(min=1, max=16, help="Answers per endpoint.")] = 1,
    concurrency: Annotated[int, typer.Option(min=1, max=256, help="Calls at a time.")] = 8,
    attempts: Annotated[int, typer.Option(min=1, max=20, help="Tries per call.")] = 4,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait for one answer.")] = 120,
    strict: Annotated[
        bool, typer.Option(help="Import nothing if any prompt failed (default: import the rest).")
    ] = False,
) -> None:
    """Answer prompts with the project's chat endpoints, then import prompts and answers.

    Prompts whose answers are not all there are left out and listed; run the same command
    again to retry just those (prompts already imported are skipped).
    """
    import httpx

    from pickwise.batches import repository as batches_repository
    from pickwise.batches import service as batches_service
    from pickwise.cli.runtime import database, run
    from pickwise.core.db import get_engine, session_factory
    from pickwise.core.outbound import outbound_client
    from pickwise.generation import service
    from pickwise.generation.chat import EndpointConfig, MissingApiKey, RetryPolicy
    from pickwise.generation.runner import GenerationOptions, generate_jsonl
    from pickwise.projects.lookup import get_by_slug_or_404

    database()
    options = GenerationOptions(
        concurrency=concurrency,
        samples=samples,
        policy=RetryPolicy(attempts=attempts, timeout=timeout),
    )

    async def load() -> tuple[int, list[EndpointConfig]]:
        async with session_factory(get_engine())() as session:
            target = await get_by_slug_or_404(session, project)
            found = await service.list_endpoints(session, target, active_only=True)
        chosen = [e for e in found if not endpoint or e.name in endpoint]
        missing = sorted(set(endpoint or ()) - {e.name for e in chosen})
        if missing:
            raise PickwiseError(f"no active endpoint called {', '.join(missing)} in {project}")
        return target.id, [EndpointConfig.from_endpoint(e) for e in chosen]

    async def known_ids(project_id: int, prompt_ids: Sequence[str]) -> set[str]:
        async with session_factory(get_engine())() as session:
            return set(await batches_repository.existing_hashes(session, project_id, prompt_ids))

    async def work() -> tuple["GenerationReport", "ImportOutcome | None"]:
        project_id, endpoints = await load()
        if len(endpoints) * samples < 2:
            raise PickwiseError(
                f"{len(endpoints)} active endpoint(s) give fewer than two answers to compare; "
                "add endpoints (admin page or API) or pass --samples 2"
            )
        async with outbound_client(limits=httpx.Limits(max_connections=concurrency)) as http:
            with (
                file.open("rb") as source,
                tempfile.TemporaryFile() as complete,
                Progress(
                    TextColumn("{task.description}"),
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeElapsedColumn(),
                    console=console,
                ) as bar,
            ):
                task = bar.add_task(f"answering {file.name}", total=None)
                report = await generate_jsonl(
                    source,
                    complete,
                    endpoints,
                    known_ids=lambda ids: known_ids(project_id, ids),
                    http=http,
                    options=options,
                    progress=lambda done, total: bar.update(task, completed=done, total=total),
                )
                if report.invalid.count or report.written == 0:
                    return report, None
                if strict and report.failure_count:
                    return report, None
                complete.seek(0)
                bar.update(task, description=f"importing {file.name}")
                async with session_factory(get_engine())() as session, session.begin():
                    target = await get_by_slug_or_404(session, project)
                    outcome = await batches_service.import_stream(
                        session,
                        target,
                        complete,
                        filename=file.name,
                        source="cli",
                        user=None,
                        file_format="jsonl",
                    )
                return report, outcome

    try:
        report, outcome = run(work())
    except MissingApiKey as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    except ImportRejected as exc:
        from pickwise.cli.import_cmd import show_rejection

        show_rejection(exc)
        raise typer.Exit(1) from exc
    except PickwiseError as exc:
        console.print(f"[red]error:[/red] {exc.detail}")
        raise typer.Exit(1) from exc
    if report.invalid.count:
        _show_invalid(report)
        raise typer.Exit(1)
    if report.failure_count:
        _show_failures(report)
    if report.stopped_early:
        console.print("[red]Stopped early:[/red] too many prompts failed; check the endpoints.")
    console.print(
        f"{report.generated} prompt(s) answered ({report.answers} answers, "
        f"{report.retries} retried call(s)); {report.passed_through} already had responses; "
        f"{report.already_in_project} already in the project"
    )
    if outcome is not None and not outcome.nothing_new:
        console.print(f"[green]Imported[/green] batch {outcome.batch_id}: {outcome.summary}")
    elif report.failure_count and strict:
        console.print("[yellow]Nothing imported[/yellow] (--strict).")
    else:
        console.print("Nothing new to import.")
    if report.failure_count:
        raise typer.Exit(1)
