"""Where the database URL, the read replica and the data folder come from: the environment,
then `.env` in the working folder, then the defaults; the app, the engines and every command
resolve the database through the settings."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from pickwise.core.config import Settings
from pickwise.core.db import get_database, get_engine, get_read_engine
from pickwise.core.embedded_pg import resolve_database
from tests.conftest import reread_settings

SOURCES = ("DATABASE_URL", "READ_DATABASE_URL", "PICKWISE_DATA_DIR")
DOTENV_URL = "postgresql://dotenv:dotenv-pw@db.invalid:5432/from_dotenv"
ENV_URL = "postgresql://env:env-pw@db.invalid:5432/from_env"


@pytest.fixture
def folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working folder, and none of the three settings in the environment."""
    monkeypatch.chdir(tmp_path)
    for name in SOURCES:
        monkeypatch.delenv(name, raising=False)
    yield tmp_path
    # The rest of the run reads its own environment again (monkeypatch restores it first).
    monkeypatch.undo()
    reread_settings()


def write_dotenv(folder: Path, **values: str) -> None:
    (folder / ".env").write_text("".join(f"{name}={value}\n" for name, value in values.items()))


def test_dotenv_is_read_when_the_environment_is_silent(folder: Path) -> None:
    write_dotenv(
        folder,
        DATABASE_URL=DOTENV_URL,
        READ_DATABASE_URL=DOTENV_URL.replace("from_dotenv", "replica"),
        PICKWISE_DATA_DIR="dotenv-data",
    )
    settings = Settings()
    assert settings.database_url == DOTENV_URL
    assert settings.read_database_url == DOTENV_URL.replace("from_dotenv", "replica")
    assert settings.pickwise_data_dir == Path("dotenv-data")


def test_the_environment_beats_dotenv(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_dotenv(folder, DATABASE_URL=DOTENV_URL, PICKWISE_DATA_DIR="dotenv-data")
    monkeypatch.setenv("DATABASE_URL", ENV_URL)
    monkeypatch.setenv("PICKWISE_DATA_DIR", "env-data")
    settings = Settings()
    assert settings.database_url == ENV_URL
    assert settings.pickwise_data_dir == Path("env-data")


def test_defaults_without_environment_or_dotenv(folder: Path) -> None:
    settings = Settings()
    assert settings.database_url is None and settings.read_database_url is None
    assert settings.pickwise_data_dir == Path(".pickwise")


def test_a_dotenv_database_is_used_and_no_embedded_server_started(folder: Path) -> None:
    write_dotenv(folder, DATABASE_URL=DOTENV_URL, PICKWISE_DATA_DIR="data")
    database = resolve_database(Settings())
    assert database.url == "postgresql+psycopg://dotenv:dotenv-pw@db.invalid:5432/from_dotenv"
    assert not database.embedded
    assert not (folder / "data").exists()


def test_the_engines_follow_dotenv(folder: Path) -> None:
    write_dotenv(
        folder,
        DATABASE_URL=DOTENV_URL,
        READ_DATABASE_URL=DOTENV_URL.replace("from_dotenv", "replica"),
    )
    reread_settings()
    assert get_database().url.endswith("/from_dotenv")
    # Engines connect lazily: nothing here reaches the (unreachable) hosts.
    assert get_engine().url.database == "from_dotenv"
    assert get_read_engine().url.database == "replica"


def test_the_description_hides_the_password(folder: Path) -> None:
    write_dotenv(folder, DATABASE_URL=DOTENV_URL)
    shown = resolve_database(Settings()).describe()
    assert "dotenv-pw" not in shown
    assert shown == "postgresql+psycopg://dotenv:***@db.invalid:5432/from_dotenv (DATABASE_URL)"
