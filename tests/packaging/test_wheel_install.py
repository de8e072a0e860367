"""The wheel as an operator gets it: built from the sdist (as `make dist` does), installed
with pip into a fresh virtualenv outside the checkout, and run from an empty folder on the
embedded Postgres: migrate, import, serve, log in, rate over the API, export, report.

Slow (a pip install and a fresh Postgres): `make test` runs it through `make wheel-smoke`.
PICKWISE_WHEEL names a wheel already built; without it the test builds one.
"""

import json
import os
import shutil
import subprocess
import sys
import time
import venv
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.ops.conftest import Server, free_port, start, stop, wait_ready
from tests.ops.test_serve_workers import postmasters

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery"
BATCH = [
    {
        "id": f"p{n}",
        "prompt": f"Question {n}?",
        "responses": [
            {"id": "a", "model": "model-a", "content": f"Answer A to {n}."},
            {"id": "b", "model": "model-b", "content": f"Answer B to {n}."},
        ],
    }
    for n in range(3)
]
# Nothing of the checkout or of the test run may leak into the installed program.
LEAKY = ("DATABASE_URL", "READ_DATABASE_URL", "PICKWISE_DATA_DIR", "VIRTUAL_ENV", "PYTHONPATH")


class Steps:
    """Seconds each step took, printed at the end (the smoke's figures)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.last = self.started
        self.times: dict[str, float] = {}

    def done(self, name: str) -> None:
        now = time.perf_counter()
        self.times[name] = now - self.last
        self.last = now

    def report(self) -> str:
        parts = [f"{name} {seconds:.1f}s" for name, seconds in self.times.items()]
        return f"wheel smoke: {time.perf_counter() - self.started:.1f}s ({', '.join(parts)})"


def built_wheel(out: Path) -> Path:
    given = os.environ.get("PICKWISE_WHEEL")
    if given:
        return Path(given).resolve()
    subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
    )
    return next(out.glob("pickwise-*.whl"))


@pytest.fixture
def outside(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A folder outside the checkout, removed afterwards (the virtualenv is 500 MB)."""
    folder = tmp_path_factory.mktemp("wheel").resolve()
    assert ROOT not in folder.parents
    yield folder
    for server in postmasters(folder / "data"):  # Left by a failed run.
        server.terminate()
    shutil.rmtree(folder, ignore_errors=True)


def test_the_wheel_runs_from_an_empty_folder(
    outside: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    steps = Steps()
    wheel = built_wheel(outside / "dist")
    steps.done("build")

    environment = outside / "venv"
    venv.create(environment, with_pip=True)
    bin_dir = environment / "bin"
    pip_env = {k: v for k, v in os.environ.items() if k not in LEAKY}
    subprocess.run(
        [str(bin_dir / "pip"), "install", "--quiet", "--disable-pip-version-check", str(wheel)],
        check=True,
        env=pip_env,
        capture_output=True,
    )
    steps.done("pip install")

    work = outside / "empty"
    work.mkdir()
    env = {k: v for k, v in pip_env.items() if not k.startswith("PIP_")}
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PICKWISE_DATA_DIR": str(outside / "data"),
        "LOG_LEVEL": "INFO",
        "COLUMNS": "200",
    }

    def pickwise(*args: str) -> str:
        result = subprocess.run(
            [str(bin_dir / "pickwise"), *args], cwd=work, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0, f"pickwise {' '.join(args)}:\n{result.stdout}{result.stderr}"
        return result.stdout

    located = subprocess.run(
        [str(bin_dir / "python"), "-c", "import pickwise; print(pickwise.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(located.strip()).is_relative_to(environment), located

    pickwise("db", "upgrade")
    steps.done("db upgrade")
    pickwise("projects", "create", "smoke")
    pickwise("users", "create", "admin@example.org", "--admin", "--password", PASSWORD)
    pickwise("users", "create", "rater@example.org", "--project", "smoke", "--password", PASSWORD)
    batch = work / "batch.jsonl"
    batch.write_text("".join(json.dumps(record) + "\n" for record in BATCH))
    pickwise("import", "smoke", str(batch))
    admin_token = pickwise("users", "token", "admin@example.org").split()[-1]
    rater_token = pickwise("users", "token", "rater@example.org").split()[-1]
    steps.done("import and accounts")

    port = free_port()
    server = start(
        [str(bin_dir / "pickwise"), "serve", "--host", "127.0.0.1", "--port", str(port)],
        port,
        outside / "serve.log",
        env,
        cwd=work,
    )
    try:
        wait_ready(server)
        steps.done("serve")
        exercise(server, admin_token, rater_token)
    finally:
        assert stop(server) == 0, server.output()
        assert "Traceback" not in server.output(), server.output()
    database_lines = [line for line in server.output().splitlines() if '"database' in line]
    assert database_lines and "(embedded Postgres)" in database_lines[0], server.output()
    steps.done("log in, rate, download")

    exported = pickwise("export", "smoke", "--format", "votes", "--out", "exports")
    folder = next((work / "exports").iterdir())
    votes = (folder / "train.jsonl").read_text() + (folder / "test.jsonl").read_text()
    assert len(votes.splitlines()) == 1, exported
    report = json.loads(pickwise("report", "smoke", "--json"))
    assert report["progress"]["judgments"] == 1
    steps.done("export and report")
    assert postmasters(outside / "data") == [], "the embedded Postgres outlived the commands"
    with capsys.disabled():
        print("\n" + steps.report())


def exercise(server: Server, admin_token: str, rater_token: str) -> None:
    """Pages and static files from the package, a web login, one judgment, a download."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        assert "<form" in client.get("/login").text
        assert client.get("/static/css/app.css").status_code == 200
        assert client.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
        login = client.post(
            "/login", data={"email": "rater@example.org", "password": PASSWORD, "next": "/"}
        )
        assert login.status_code == 303 and "pickwise_session" in login.cookies, login.text

        admin = {"Authorization": f"Bearer {admin_token}"}
        rater = {"Authorization": f"Bearer {rater_token}"}
        (project,) = client.get("/api/v1/projects", headers=admin).json()
        lease = client.get(f"/api/v1/projects/{project['id']}/next", headers=rater).json()
        judged = client.post(
            f"/api/v1/assignments/{lease['assignment_id']}/judgment",
            json={"choice": "left"},
            headers=rater,
        )
        assert judged.status_code == 201, judged.text
        download = client.get(
            f"/api/v1/projects/{project['id']}/export", params={"format": "votes"}, headers=admin
        )
        assert download.status_code == 200 and len(download.text.splitlines()) == 1
