"""`pickwise serve` as a real subprocess on a free loopback port, always stopped afterwards."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

PICKWISE = Path(sys.executable).parent / "pickwise"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class AppServer:
    def __init__(self, database_url: str, log_path: Path, *, workers: int = 2) -> None:
        self.database_url = database_url
        self.log_path = log_path
        self.workers = workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ)
        env.pop("READ_DATABASE_URL", None)
        env.update(
            DATABASE_URL=self.database_url,
            ENVIRONMENT="test",
            PICKWISE_DATA_DIR=str(self.log_path.parent / "pickwise-data"),
            PYTHONUNBUFFERED="1",
        )
        command = [str(PICKWISE), "serve", "--no-migrate", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--workers", str(self.workers)]
        with self.log_path.open("ab") as log:
            # A session of its own, so stop() can end the supervisor and its workers together.
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_ready()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Until /readyz answers 200 and every worker process is up."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log()[-5_000:]}")
            try:
                ready = httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200
            except httpx.TransportError:
                ready = False
            if ready and len(self.worker_pids()) == self.workers:
                return
            time.sleep(0.2)
        raise TimeoutError(f"server not ready after {timeout} s:\n{self.log()[-5_000:]}")

    def worker_pids(self) -> list[int]:
        assert self.process is not None
        try:
            children = psutil.Process(self.process.pid).children()
        except psutil.NoSuchProcess:
            return []
        pids = []
        for child in children:
            try:
                if "spawn_main" in " ".join(child.cmdline()):
                    pids.append(child.pid)
            except psutil.NoSuchProcess:
                continue
        return pids

    def worker_serving(self, client_port: int) -> int | None:
        """The worker process holding the server end of our connection from `client_port`
        (the worker that accepted it serves every request sent on it)."""
        for pid in self.worker_pids():
            try:
                connections = psutil.Process(pid).net_connections(kind="tcp")
            except psutil.NoSuchProcess:
                continue
            for connection in connections:
                ends = (connection.laddr, connection.raddr)
                if all(ends) and (ends[0].port, ends[1].port) == (self.port, client_port):
                    return pid
        return None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(STOP_TIMEOUT)
        # Workers that outlived the supervisor (they share its process group).
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@dataclass(frozen=True)
class LogErrors:
    # Errors logged while serving a request (they carry its id), and raw tracebacks.
    requests: list[str]
    # Errors of background work (no request id), e.g. a worker round that failed.
    background: list[str]


def log_errors(log: str) -> LogErrors:
    """The error lines of a server log (one JSON object a line, or plain text)."""
    requests: list[str] = []
    background: list[str] = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict):
            if "Traceback" in line or "ERROR" in line:
                requests.append(line)
        elif entry.get("level") in ("error", "critical"):
            (requests if entry.get("request_id") else background).append(line[:3_000])
    return LogErrors(requests, background)


@contextmanager
def running_server(database_url: str, log_path: Path, *, workers: int = 2) -> Iterator[AppServer]:
    server = AppServer(database_url, log_path, workers=workers)
    try:
        server.start()
        yield server
    finally:
        server.stop()
