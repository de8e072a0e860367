"""`python -m bench <name> [--quick]`; `python -m bench all [--quick]`."""

import os
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(add_completion=False)
ROOT = Path(__file__).resolve().parents[1]


def _runtime_dir() -> None:
    # The embedded server puts its socket under XDG_RUNTIME_DIR (see the Makefile).
    folder = Path(os.environ.setdefault("XDG_RUNTIME_DIR", str(ROOT / ".pickwise" / "run")))
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)


@app.command()
def main(
    name: Annotated[
        str,
        typer.Argument(
            help="rater-loop, import, export, analytics, login-storm, explorer, conversations "
            "or all."
        ),
    ],
    quick: Annotated[
        bool, typer.Option("--quick", help="Small sizes (minutes, not half an hour).")
    ] = False,
    requests_per_judgment: Annotated[
        int | None,
        typer.Option(
            "--requests-per-judgment",
            min=1,
            max=2,
            help="rater-loop: 1 = POST …/judgment?next=true (default); 2 = GET …/next + POST.",
        ),
    ] = None,
    paced_only: Annotated[
        bool,
        typer.Option(
            "--paced-only",
            help="rater-loop: only the paced runs (16 raters thinking; each server's and the "
            "raw limit's), for the paced next-pair latency; written to bench/results/"
            "<size>-paced/.",
        ),
    ] = False,
    keep_data: Annotated[
        Path | None,
        typer.Option(
            "--keep-data",
            envvar="PICKWISE_BENCH_KEEP_DATA",
            file_okay=False,
            help="explorer: keep the generated database in this folder; a later run with the "
            "same folder and size upgrades it to the migrations' head and only measures.",
        ),
    ] = None,
) -> None:
    """Run benchmarks on a fresh Postgres; print tables, write bench/results/<name>.json."""
    _runtime_dir()
    if requests_per_judgment is not None:
        from bench.rater_loop import REQUESTS_ENV

        os.environ[REQUESTS_ENV] = str(requests_per_judgment)
    if paced_only:
        from bench.rater_loop import PACED_ONLY_ENV

        os.environ[PACED_ONLY_ENV] = "1"
    from bench.runner import BENCHMARKS, run_benchmarks

    names = list(BENCHMARKS) if name == "all" else [name]
    unknown = [item for item in names if item not in BENCHMARKS]
    if unknown:
        raise typer.BadParameter(f"unknown benchmark {unknown[0]!r}; one of {list(BENCHMARKS)}")
    run_benchmarks(names, "quick" if quick else "full", keep_data)


if __name__ == "__main__":
    app()
