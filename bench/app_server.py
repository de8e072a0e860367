"""`pickwise serve` as deployed, in a subprocess on a loopback port."""

import os
import secrets
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.measure import pickwise_command, stop_process


@dataclass(frozen=True)
class RunningApp:
    base_url: str
    pid: int
    log: Path


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# One secret for every server and command of a bench run (it signs invites).
_RUN_SECRET = secrets.token_urlsafe(48)


def child_env(database_url: str) -> dict[str, str]:
    env = dict(os.environ)
    env["DATABASE_URL"] = database_url
    # As deployed (docs/deploy.md): production, which refuses the default secret, keeps
    # template files unwatched and marks cookies Secure, as a deployment behind its TLS
    # proxy has them. The bench's clients send their login cookie themselves, so the flag
    # changes nothing they do. The conversations bench's model server is on loopback, which
    # production reaches only when allowed, as for a model served on the same host.
    env.setdefault("ENVIRONMENT", "production")
    env.setdefault("SECRET_KEY", _RUN_SECRET)
    env.setdefault("PICKWISE_OUTBOUND_ALLOW_PRIVATE", "true")
    env["PYTHONUNBUFFERED"] = "1"
    # As installed (pip compiles a wheel's bytecode), not recompiling every module at each
    # start, which a shell with this set would make every CLI run pay (~0.1 s of CPU).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


@contextmanager
def serve(
    database_url: str,
    *,
    workers: int,
    log: Path,
    timeout: float = 90,
    env: dict[str, str] | None = None,
) -> Iterator[RunningApp]:
    port = free_port()
    argv = [
        *pickwise_command(),
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--no-migrate",
    ]
    with log.open("wb") as sink:
        process = subprocess.Popen(
            argv,
            env={**child_env(database_url), **(env or {})},
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, process, log, timeout, workers)
        yield RunningApp(base_url=base_url, pid=process.pid, log=log)
    finally:
        stop_process(process)


def _wait_ready(
    base_url: str, process: subprocess.Popen[bytes], log: Path, timeout: float, workers: int
) -> None:
    deadline = time.monotonic() + timeout
    ready = 0
    with httpx.Client(base_url=base_url, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"pickwise serve exited:\n{log.read_text()[-3000:]}")
            try:
                if client.get("/readyz").status_code == 200:
                    ready += 1
                    # With several workers, ask a few times so each has likely started.
                    if ready >= workers * 3:
                        return
                    continue
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    raise TimeoutError(f"pickwise serve did not become ready:\n{log.read_text()[-3000:]}")
