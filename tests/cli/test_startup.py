"""Every `pickwise` command pays for what the CLI imports before it runs: `--help` and the
commands that need no database load none of the heavy libraries, an import of a small file
does without numpy, and the import command freezes what it loads for the garbage collector."""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pickwise.core.db import get_engine, session_factory
from pickwise.models import Batch
from tests.factories import make_project

HEAVY = ("sqlalchemy", "pydantic", "psycopg", "numpy", "fastapi", "starlette", "httpx", "jinja2")


def value_after(script: str, expression: str) -> Any:
    """`expression`'s value (as JSON) in a new interpreter, once it has run `script`."""
    result = subprocess.run(
        [sys.executable, "-c", f"{script}\nimport json, sys\nprint(json.dumps({expression}))"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def loaded_modules_after(script: str) -> list[str]:
    modules: list[str] = value_after(script, "list(sys.modules)")
    return modules


def loaded_after(script: str) -> list[str]:
    """The heavy libraries among the modules loaded after `script`."""
    return sorted({name.split(".")[0] for name in loaded_modules_after(script)} & set(HEAVY))


def test_the_cli_starts_without_the_heavy_libraries() -> None:
    # What `pickwise --help` does: import the command tree and build every command's options.
    script = "import typer.main\nfrom pickwise.cli.main import app\ntyper.main.get_command(app)"
    assert loaded_after(script) == []


# Two lines with the same id: the check for repeated ids runs, as in every import.
TWO_LINES = b'{"id": "p1", "prompt": "?", "response_a": "a", "response_b": "b"}\n' * 2


def test_reading_a_small_file_does_not_import_numpy() -> None:
    script = (
        "import io\n"
        "import pickwise.batches.service\n"
        "from pickwise.batches.parsing.reader import validate\n"
        f"assert validate(io.BytesIO({TWO_LINES!r}), filename='f.jsonl').errors\n"
    )
    assert "numpy" not in loaded_after(script)


# What `pickwise import` does not need: SQLAlchemy, the ORM models and the sessions (it writes
# through psycopg; ~0.25 CPU s of its start-up, docs/benchmarks.md, "i26d"), the other
# domains' rules, the explorer's reads, the API's schemas, the metrics library (round 7).
NOT_FOR_AN_IMPORT = (
    "sqlalchemy",
    "pickwise.models",
    "pickwise.core.db",
    "prometheus_client",
    "pickwise.assignments.service",
    "pickwise.assignments.schemas",
    "pickwise.review.repository",
    "pickwise.review.schemas",
    "pickwise.projects.service",
    "pickwise.projects.schemas",
    "pickwise.overlap.service",
)


def import_up_to_its_first_connection(tmp_path: Path) -> str:
    """A script that runs the real command up to its first connection: a server that is not
    there refuses it, after every module the command needs is loaded."""
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(TWO_LINES[: len(TWO_LINES) // 2])
    return (
        "import os\n"
        "os.environ['DATABASE_URL'] = 'postgresql://pickwise@127.0.0.1:9/absent'\n"
        "from pickwise.cli.main import app\n"
        "try:\n"
        f"    app(['import', 'some-project', {str(batch)!r}], standalone_mode=False)\n"
        "except Exception:\n"
        "    pass\n"
    )


def test_the_import_command_loads_only_what_an_import_needs(tmp_path: Path) -> None:
    loaded = set(loaded_modules_after(import_up_to_its_first_connection(tmp_path)))
    assert "pickwise.batches.service" in loaded
    assert sorted(loaded & set(NOT_FOR_AN_IMPORT)) == []


async def test_a_whole_import_loads_only_what_an_import_needs(
    live_app: Any, tmp_path: Path
) -> None:
    # To the end this time (the batch is stored): what the command loads after its writes,
    # e.g. a metrics library for a counter no one reads in a command's process, counts too.
    async with session_factory(get_engine())() as session, session.begin():
        slug = (await make_project(session)).slug
    batch = tmp_path / "batch.jsonl"
    batch.write_text(
        '{"id": "p1", "prompt": "?", "response_a": "a", "response_b": "b", '
        '"model_a": "m1", "model_b": "m2"}\n'
    )
    script = (
        "import sys\n"
        "from pickwise.cli.main import app\n"
        "try:\n"
        f"    app(['import', {slug!r}, {str(batch)!r}, '--search-later'])\n"
        "except SystemExit as exit:\n"
        "    assert not exit.code, exit.code\n"
    )
    loaded = set(loaded_modules_after(script))
    assert "pickwise.batches.service" in loaded
    async with session_factory(get_engine())() as session:
        assert await session.scalar(select(Batch.prompts_new).where(Batch.filename == batch.name))
    assert sorted(loaded & set(NOT_FOR_AN_IMPORT)) == []


def test_the_import_command_freezes_what_it_loads_and_still_collects(tmp_path: Path) -> None:
    frozen, collecting = value_after(
        import_up_to_its_first_connection(tmp_path),
        "[__import__('gc').get_freeze_count(), __import__('gc').isenabled()]",
    )
    # The libraries and models it loaded: never scanned again by the collector, which is on
    # for whatever the import makes afterwards.
    assert frozen > 10_000
    assert collecting is True
