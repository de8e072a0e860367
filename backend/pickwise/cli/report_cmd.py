"""`pickwise report PROJECT`: the dashboard's tables in the terminal."""

from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console, JustifyMethod
from rich.table import Table

if TYPE_CHECKING:
    # Imported when the command runs: the analytics modules weigh ~0.15 s of start-up that
    # every other command (an import, an export) would pay for nothing.
    from pickwise.analytics.schemas import ReportRead

console = Console()
TIMELINE_DAYS = 31


def report(
    project: Annotated[str, typer.Argument(help="Project slug.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the whole report as JSON instead.")
    ] = False,
) -> None:
    """Progress, raters (with flags), agreement, the model leaderboard and what the
    preferences teach, computed as the dashboard computes them."""
    from sqlalchemy.ext.asyncio import AsyncSession

    from pickwise.analytics import service
    from pickwise.analytics.repository import read_only_connection
    from pickwise.cli.runtime import database, run_or_exit
    from pickwise.core.db import get_read_engine
    from pickwise.projects.lookup import get_by_slug_or_404

    database()

    async def work() -> "tuple[str, ReportRead]":
        async with read_only_connection(get_read_engine()) as connection:
            async with AsyncSession(bind=connection) as session:
                target = await get_by_slug_or_404(session, project)
                title = f"{target.name} ({target.slug})"
            return title, await service.report(connection, target)

    title, result = run_or_exit(work())
    if as_json:
        typer.echo(result.model_dump_json(indent=2))
        return
    print_report(title, result)


def print_report(title: str, result: "ReportRead") -> None:
    console.rule(f"[bold]{title}[/bold]")
    console.print(
        "Gold pairs count only for gold accuracy. Excluded raters are listed, but their votes "
        "are left out of agreement, the leaderboard and the preferences.",
        style="dim",
    )
    _progress(result)
    _raters(result)
    _agreement(result)
    _leaderboard(result)
    _preferences(result)


def _not_ready(message: str | None) -> None:
    console.print(f"[yellow]{message}[/yellow]")


def _excluded_note(count: int) -> None:
    if count:
        plural = "s" if count != 1 else ""
        console.print(f"Votes of {count} excluded rater{plural} left out.", style="dim")


def _progress(result: "ReportRead") -> None:
    from pickwise.web.dashboard import percent

    progress = result.progress
    console.print("\n[bold]Progress[/bold]")
    console.print(
        f"Pairs: {progress.pairs_done:,} done ({percent(progress.share_done)}), "
        f"{progress.pairs_in_progress:,} in progress, {progress.pairs_open:,} open, "
        f"{progress.pairs_flagged:,} flagged; {progress.judgments_needed:,} judgments still "
        f"needed.\nJudgments: {progress.judgments:,} (+ {progress.gold_judgments:,} gold) by "
        f"{progress.raters_active:,} raters; {progress.models:,} models."
    )
    overlap = progress.overlap
    console.print(
        f"Overlap: {overlap.summary}. {overlap.pairs_settled_early:,} pairs settled early, "
        f"{overlap.pairs_at_max:,} at the maximum; about {overlap.votes_still_needed:,.0f} votes "
        f"still needed; {overlap.votes_saved:,} votes saved so far against a fixed k."
    )
    days = result.timeline.days
    if not days:
        _not_ready("Not enough data yet: no judgments so far.")
        return
    table = Table(title="Judgments per day (UTC)", title_justify="left")
    table.add_column("Day")
    table.add_column("Judgments", justify="right")
    table.add_column("Gold", justify="right")
    for day in days[-TIMELINE_DAYS:]:
        table.add_row(day.day.isoformat(), f"{day.judgments:,}", f"{day.gold_judgments:,}")
    console.print(table)
    if len(days) > TIMELINE_DAYS:
        console.print(f"(last {TIMELINE_DAYS} of {len(days)} days)", style="dim")


def _raters(result: "ReportRead") -> None:
    from pickwise.web.dashboard import number, p_value, percent, seconds

    raters = result.raters
    console.print("\n[bold]Raters[/bold]")
    if not raters.raters:
        _not_ready("Not enough data yet: no members and no judgments.")
        return
    table = Table(show_lines=False)
    columns: list[tuple[str, JustifyMethod]] = [
        ("Rater", "left"),
        ("Judgments", "right"),
        ("Gold accuracy (95% interval)", "left"),
        ("Majority", "right"),
        ("Agrees (like others)", "left"),
        ("Left (p)", "left"),
        ("Longer (like others)", "left"),
        (f"Median s (under {seconds(raters.fast_threshold_seconds)})", "left"),
        ("Ties", "right"),
        ("Est. accuracy", "right"),
        ("Flags", "left"),
    ]
    for name, justify in columns:
        table.add_column(name, justify=justify)
    for row in raters.raters:
        name = f"{row.display_name}\n[dim]{row.pseudonym}[/dim]"
        if row.excluded:
            name += "\n[magenta]excluded[/magenta]"
        gold = (
            f"{percent(row.gold_accuracy)} ({row.gold_correct}/{row.gold_total}, "
            f"{percent(row.gold_lower)}–{percent(row.gold_upper)})"
            if row.gold_total
            else "no gold yet"
        )
        pace = (
            f"{number(row.median_seconds, 1)} ({row.fast_count})"
            if row.median_seconds is not None
            else "–"
        )
        flags = ", ".join(flag.label for flag in row.flags)
        table.add_row(
            name,
            f"{row.judgments:,}",
            gold,
            percent(row.majority_agreement),
            f"{percent(row.agreement_with_others)} ({percent(row.agreement_expected)})",
            f"{percent(row.left_share)} ({p_value(row.position_p_value)})",
            f"{percent(row.longer_share)} ({percent(row.longer_share_expected)})",
            pace,
            percent(row.tie_rate),
            percent(row.dawid_skene_accuracy),
            f"[red]{flags}[/red]" if flags else "[dim]none[/dim]",
        )
    console.print(table)
    console.print(f"{raters.flagged} of {len(raters.raters)} raters flagged.")
    for row in raters.raters:
        for flag in row.flags:
            console.print(f"  {row.display_name}: [bold]{flag.label}[/bold]: {flag.detail}")
    thresholds = raters.thresholds
    if thresholds.overridden:
        overrides = ", ".join(f"{k} = {v:g}" for k, v in sorted(thresholds.overridden.items()))
        console.print(f"Thresholds from the project's quality rules: {overrides}", style="dim")
    if thresholds.ignored_rules:
        console.print(
            f"[yellow]Quality rules ignored:[/yellow] {', '.join(thresholds.ignored_rules)}"
        )


def _agreement(result: "ReportRead") -> None:
    from pickwise.web.dashboard import number, percent

    agreement = result.agreement
    console.print("\n[bold]Agreement[/bold]")
    if not agreement.ready or agreement.project is None:
        _not_ready(agreement.message)
        _excluded_note(agreement.excluded_raters_left_out)
        return
    stats = agreement.project
    console.print(
        f"Raw agreement {percent(stats.agreement_with_ties)} of "
        f"{stats.rater_pairs_with_ties:,} rater pairs; without ties "
        f"{percent(stats.agreement_without_ties)} of {stats.rater_pairs_without_ties:,}; "
        f"Krippendorff's α {number(stats.krippendorff_alpha)} ({stats.items:,} pairs, "
        f"{stats.judgments:,} judgments)."
    )
    if len(agreement.batches) > 1:
        table = Table(title="Per batch", title_justify="left")
        for name in ("Batch", "Pairs", "Raw", "Without ties", "α"):
            table.add_column(name, justify="left" if name == "Batch" else "right")
        for batch in agreement.batches:
            table.add_row(
                f"#{batch.batch_id} {batch.filename}",
                f"{batch.items:,}",
                percent(batch.agreement_with_ties),
                percent(batch.agreement_without_ties),
                number(batch.krippendorff_alpha),
            )
        console.print(table)
    table = Table(title="Per rater", title_justify="left")
    for name in ("Rater", "Judgments", "With others", "Without ties", "Majority", "α without"):
        table.add_column(name, justify="left" if name == "Rater" else "right")
    for rater in agreement.raters:
        table.add_row(
            rater.display_name,
            f"{rater.judgments:,}",
            percent(rater.agreement_with_ties),
            percent(rater.agreement_without_ties),
            percent(rater.majority_agreement),
            number(rater.alpha_without_rater),
        )
    console.print(table)
    _excluded_note(agreement.excluded_raters_left_out)


def _leaderboard(result: "ReportRead") -> None:
    from pickwise.web.dashboard import STYLE_LABELS, number, percent

    board = result.leaderboard
    console.print("\n[bold]Model leaderboard[/bold]")
    if not board.ready:
        _not_ready(board.message)
    else:
        table = Table(
            caption=f"{board.votes:,} votes; 95% intervals from {board.bootstrap_rounds} "
            "bootstrap rounds; overlapping intervals share a rank.",
            caption_justify="left",
        )
        for name in ("Rank", "Model", "Score", "95% interval", "Votes", "Style-controlled"):
            table.add_column(name, justify="left" if name in ("Model", "95% interval") else "right")
        for model in board.models:
            table.add_row(
                str(model.rank),
                model.model,
                number(model.score, 0),
                f"{number(model.lower, 0)} – {number(model.upper, 0)}",
                f"{model.votes:,}",
                number(model.score_style_controlled, 0),
            )
        console.print(table)
        rates = Table(title="Win rates (row vs column)", title_justify="left")
        rates.add_column("")
        for model in board.models:
            rates.add_column(model.model, justify="right")
        for model, row in zip(board.models, board.win_rate, strict=True):
            rates.add_row(model.model, *(percent(rate) if rate is not None else "" for rate in row))
        console.print(rates)
        style = Table(title="Style effects (log-odds per RMS difference)", title_justify="left")
        for name in ("Feature", "Effect", "95% interval"):
            style.add_column(name, justify="right" if name == "Effect" else "left")
        for coefficient in board.style_coefficients:
            interval = (
                f"{number(coefficient.lower)} – {number(coefficient.upper)}"
                if coefficient.lower is not None
                else "–"
            )
            style.add_row(
                STYLE_LABELS.get(coefficient.feature, coefficient.feature),
                number(coefficient.coefficient),
                interval,
            )
        console.print(style)
    for note in board.notes:
        console.print(note, style="dim")
    _excluded_note(board.excluded_raters_left_out)


def _preferences(result: "ReportRead") -> None:
    from pickwise.web.dashboard import FEATURE_LABELS, number, percent

    preferences = result.preferences
    console.print("\n[bold]What the preferences teach[/bold]")
    if not preferences.ready:
        _not_ready(preferences.message)
        _excluded_note(preferences.excluded_raters_left_out)
        return
    table = Table(
        caption=f"Logistic regression on {preferences.judgments:,} A-or-B votes (ties left "
        "out); a positive weight favours the answer with the property.",
        caption_justify="left",
    )
    for name in ("Property", "Weight (log-odds)", "95% interval"):
        table.add_column(name, justify="right" if name.startswith("Weight") else "left")
    for weight in preferences.weights:
        interval = (
            f"{number(weight.lower)} – {number(weight.upper)}"
            if weight.lower is not None
            else "never differed"
        )
        table.add_row(FEATURE_LABELS.get(weight.name, weight.name), number(weight.weight), interval)
    console.print(table)
    console.print(
        f"Held-out accuracy ({preferences.folds}-fold): "
        f"{percent(preferences.held_out_accuracy, 1)}, baseline "
        f"{percent(preferences.baseline_accuracy, 1)}."
    )
    _excluded_note(preferences.excluded_raters_left_out)
