"""Every `pickwise` command pays for what the CLI imports before it runs: `--help` and the
commands that need no database load none of the heavy libraries, and an import of a small
file does without numpy."""

import json
import subprocess
import sys

HEAVY = ("sqlalchemy", "pydantic", "psycopg", "numpy", "fastapi", "starlette", "httpx", "jinja2")


def loaded_after(script: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", f"{script}\nimport json, sys\nprint(json.dumps(list(sys.modules)))"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    modules = json.loads(result.stdout.strip().splitlines()[-1])
    return sorted({name.split(".")[0] for name in modules} & set(HEAVY))


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
