from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

if TYPE_CHECKING:
    # Annotations only: SQLAlchemy is imported by the commands that use it, so `--help` and
    # the other commands start without it.
    from sqlalchemy.ext.asyncio import AsyncSession

app = typer.Typer(help="Projects.", no_args_is_help=True)
console = Console()


@app.command("create")
def create(
    slug: Annotated[str, typer.Argument(help="Short name: lower-case letters, digits, dashes.")],
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    raters_per_pair: Annotated[int, typer.Option(help="Distinct raters per pair (k).")] = 1,
    strategy: Annotated[str, typer.Option(help="Pairing: all or random_k.")] = "all",
    pairs_per_prompt: Annotated[int, typer.Option(help="k for random_k.")] = 1,
    strength_scale: Annotated[
        str, typer.Option(help='Comma-separated labels, e.g. "slightly,clearly,much".')
    ] = "",
    gold_rate: Annotated[float, typer.Option(help="Share of gold pairs shown.")] = 0.0,
) -> None:
    """Create a project."""
    from pydantic import ValidationError

    from pickwise.cli.runtime import run_or_exit, with_session
    from pickwise.projects import service
    from pickwise.projects.schemas import ProjectCreate

    try:
        data = ProjectCreate(
            slug=slug,
            name=name or slug,
            raters_per_pair=raters_per_pair,
            pairing_strategy=strategy,
            pairs_per_prompt=pairs_per_prompt,
            strength_scale=[label for label in strength_scale.split(",") if label.strip()],
            gold_rate=gold_rate,
        )
    except ValidationError as exc:
        for error in exc.errors():
            console.print(f"[red]error:[/red] {'.'.join(map(str, error['loc']))}: {error['msg']}")
        raise typer.Exit(2) from exc

    async def work(session: "AsyncSession") -> int:
        return (await service.create_project(session, data)).id

    project_id = run_or_exit(with_session(work)())
    console.print(f"Created project {slug} (id {project_id}).")
