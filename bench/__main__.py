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
) -> None:
    """Run benchmarks on a fresh Postgres; print tables, write bench/results/<name>.json."""
    _runtime_dir()
    from bench.runner import BENCHMARKS, run_benchmarks

    names = list(BENCHMARKS) if name == "all" else [name]
    unknown = [item for item in names if item not in BENCHMARKS]
    if unknown:
        raise typer.BadParameter(f"unknown benchmark {unknown[0]!r}; one of {list(BENCHMARKS)}")
    run_benchmarks(names, "quick" if quick else "full")


if __name__ == "__main__":
    app()
