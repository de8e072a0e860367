"""`pickwise serve --workers 2` on the embedded Postgres: the workers use the server the
parent started (through DATABASE_URL) instead of starting or stopping their own."""

from pathlib import Path

import httpx
import psutil

from tests.ops.conftest import BIN, Server, free_port, server_env, start, stop, wait_ready


def postmasters(data_dir: Path) -> list[psutil.Process]:
    """Postgres server processes (not their children) serving `data_dir`."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info["cmdline"] or []
        if "-D" in cmdline and Path(cmdline[cmdline.index("-D") + 1]).parent == data_dir:
            found.append(process)
    return found


def test_serve_with_two_workers_on_the_embedded_postgres(
    servers: list[Server], tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    env = server_env(PICKWISE_DATA_DIR=str(data_dir), ENVIRONMENT="test", LOG_LEVEL="WARNING")
    env.pop("DATABASE_URL", None)
    # Migrations are not the point here (and take seconds on a fresh server).
    command = [str(BIN / "pickwise"), "serve", "--workers", "2", "--no-migrate"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    server = start(command, port, tmp_path / "serve.log", env)
    servers.append(server)
    wait_ready(server, "/healthz")

    children = psutil.Process(server.process.pid).children()
    workers = [child for child in children if "spawn_main" in " ".join(child.cmdline())]
    assert len(workers) == 2, server.output()
    urls = {worker.environ().get("DATABASE_URL") for worker in workers}
    assert len(urls) == 1 and str(data_dir) in str(next(iter(urls)))
    assert len(postmasters(data_dir.resolve())) == 1
    for _ in range(6):
        # The workers reach the database: it answers that it was never migrated.
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 503 and "no migration" in ready.json()["detail"]

    assert stop(server) == 0, server.output()
    assert postmasters(data_dir.resolve()) == [], "the embedded Postgres outlived the app"
