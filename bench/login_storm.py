"""Login storm: a crowd pool opens its link and every rater logs in at once.

Argon2 costs about 0.1-0.2 s of CPU per login by design. The figure: /healthz's p99 on one
`pickwise serve` worker while the raters log in, beside the time of one argon2 check on the
idle machine (measured in the same run). With hashing on the event loop every other request
of the worker waited behind whole hashes, so the p99 was several checks long; in worker
threads the loop keeps answering, and the p99 must stay below one check. The idle worker's
/healthz latency is shown beside.

Logins answered 503 (load shedding, or no pool connection within DB_POOL_TIMEOUT) are
retried after the Retry-After second, as a person would, and so are those whose keep-alive
connection the server closed; every rater logs in in the end.
"""

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg

from bench import datagen
from bench.app_server import serve
from bench.http_client import KeepAliveClient
from bench.measure import latency_ms
from bench.postgres import Server
from bench.report import BenchResult, DetailTable, Target
from pickwise.core.security import _verify, hash_password_now

NAME = "login-storm"
PASSWORD = "correct horse battery staple"
IDLE_PROBES = 300
HASH_TIMINGS = 5
MAX_ATTEMPTS = 100


@dataclass(frozen=True)
class Size:
    raters: int


SIZES = {"full": Size(200), "quick": Size(200), "smoke": Size(10)}


@dataclass
class Storm:
    seconds: float
    attempts: int
    shed: int
    dropped: int
    probes: list[float]
    probe_errors: int


def create_raters(url: str, raters: int) -> list[str]:
    """`raters` accounts with one password (hashed once: every login still checks it)."""
    setup = datagen.make_project(url, slug="storm", raters=raters)
    with psycopg.connect(url) as conn:
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE id = ANY(%s)",
            (hash_password_now(PASSWORD), setup.rater_ids),
        )
        rows = conn.execute(
            "SELECT email FROM users WHERE id = ANY(%s) ORDER BY id", (setup.rater_ids,)
        )
        return [email for (email,) in rows]


async def probe(base_url: str, stop: asyncio.Event, samples: list[float]) -> int:
    """GET /healthz back to back on one keep-alive connection until `stop`; returns how many
    answers were not 200."""
    client = KeepAliveClient(base_url)
    errors = 0
    try:
        while not stop.is_set():
            started = time.perf_counter()
            reply = await client.get("/healthz")
            samples.append(time.perf_counter() - started)
            errors += reply.status_code != 200
            await asyncio.sleep(0.005)
    finally:
        await client.aclose()
    return errors


def one_check_seconds() -> float:
    """The fastest of a few argon2 checks of the login's password, on the idle machine."""
    hashed = hash_password_now(PASSWORD)
    timings = []
    for _ in range(HASH_TIMINGS):
        started = time.perf_counter()
        assert _verify(PASSWORD, hashed)
        timings.append(time.perf_counter() - started)
    return min(timings)


async def idle_probes(base_url: str) -> list[float]:
    samples: list[float] = []
    client = KeepAliveClient(base_url)
    try:
        for _ in range(IDLE_PROBES):
            started = time.perf_counter()
            assert (await client.get("/healthz")).status_code == 200
            samples.append(time.perf_counter() - started)
            await asyncio.sleep(0.005)
    finally:
        await client.aclose()
    return samples


async def log_in(client: httpx.AsyncClient, email: str, counts: dict[str, int]) -> None:
    for _ in range(MAX_ATTEMPTS):
        counts["attempts"] += 1
        try:
            reply = await client.post("/login", data={"email": email, "password": PASSWORD})
        except httpx.TransportError:
            # A keep-alive connection the server closed as it was reused: a browser retries.
            counts["dropped"] += 1
            continue
        if reply.status_code == 303:
            return
        if reply.status_code != 503:
            raise RuntimeError(f"login of {email}: {reply.status_code} {reply.text[:200]}")
        counts["shed"] += 1
        await asyncio.sleep(float(reply.headers.get("retry-after", "1")))
    raise RuntimeError(f"login of {email}: still refused after {MAX_ATTEMPTS} attempts")


async def storm(base_url: str, emails: list[str]) -> Storm:
    samples: list[float] = []
    stop = asyncio.Event()
    prober = asyncio.create_task(probe(base_url, stop, samples))
    counts = {"attempts": 0, "shed": 0, "dropped": 0}
    limits = httpx.Limits(max_connections=len(emails), max_keepalive_connections=len(emails))
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:
        await asyncio.gather(*(log_in(client, email, counts) for email in emails))
    seconds = time.perf_counter() - started
    stop.set()
    errors = await prober
    return Storm(seconds, counts["attempts"], counts["shed"], counts["dropped"], samples, errors)


def run(server: Server, size_name: str, workdir: Path | None = None) -> BenchResult:
    size = SIZES[size_name]
    workdir = workdir or Path(".")
    url = server.create_database("login_storm")
    emails = create_raters(url, size.raters)
    result = BenchResult(name=NAME, size=size_name, params={"raters": size.raters, "workers": 1})
    check_ms = one_check_seconds() * 1000
    with serve(url, workers=1, log=workdir / "serve.log") as app:
        idle = asyncio.run(idle_probes(app.base_url))
        measured = asyncio.run(storm(app.base_url, emails))
    idle_ms, storm_ms = latency_ms(idle), latency_ms(measured.probes)
    result.compare(
        f"/healthz p99 while {size.raters} raters log in",
        "ms",
        storm_ms["p99"],
        check_ms,
        "one argon2 check",
        Target("ratio_at_most", 1.0),
    )
    result.details.append(
        DetailTable(
            "the storm",
            [
                "logins",
                "seconds",
                "logins/s",
                "503 then retried",
                "connection lost, retried",
                "/healthz probes",
                "not 200",
            ],
            [
                [
                    size.raters,
                    measured.seconds,
                    size.raters / measured.seconds,
                    measured.shed,
                    measured.dropped,
                    len(measured.probes),
                    measured.probe_errors,
                ]
            ],
        )
    )
    result.details.append(
        DetailTable(
            "/healthz latency (ms)",
            ["when", "p50", "p99", "max", "n"],
            [
                ["idle", idle_ms["p50"], idle_ms["p99"], idle_ms["max"], idle_ms["n"]],
                ["storm", storm_ms["p50"], storm_ms["p99"], storm_ms["max"], storm_ms["n"]],
            ],
        )
    )
    result.raw = {
        "idle_ms": idle_ms,
        "storm_ms": storm_ms,
        "storm_seconds": measured.seconds,
        "argon2_check_ms": check_ms,
    }
    return result
