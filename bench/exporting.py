"""Export: judgments to `trl` JSONL through `pickwise export` (a subprocess) and through the
HTTP download of `pickwise serve`, against `COPY (SELECT …) TO STDOUT` of the same rows (the
export's per-judgment query: the same joins, selection and order, one row per judgment; the trl
export itself reads one row per pair) on the same server.

Rows counted on every side: judgments read. Two projects in one database (small and large)
give the memory comparison: peak RSS at the large size over peak RSS at the small one.
"""

import asyncio
import math
import random
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import datagen
from bench.app_server import RunningApp, child_env, serve
from bench.measure import (
    CpuMeter,
    peak_rss_mb,
    pickwise_command,
    postmaster_pid,
    reset_peak_rss,
    run_child,
)
from bench.postgres import Server
from bench.report import BenchResult, DetailTable, Target

NAME = "export"
K = 3
RESPONSES_PER_PROMPT = 4
JUDGMENTS_PER_PROMPT = 6 * K  # all 6 pairs of 4 responses, k judgments each
MODELS = tuple(f"model-{index:02d}" for index in range(8))
RATERS = 50
RATIO_TARGET = 0.5
RSS_TARGET = 1.2
PATHS = (("copy", "COPY TO STDOUT"), ("cli", "pickwise export"), ("http", "HTTP download"))
# (the HTTP download's peak RSS is the server's: it includes the app's own memory)


@dataclass(frozen=True)
class Size:
    large: int  # judgments
    small: int | None  # None skips the memory comparison


SIZES = {
    "full": Size(1_000_000, 100_000),
    "quick": Size(50_000, 5_000),
    "smoke": Size(300, None),
}


def _choose(_offset: int, rng: random.Random) -> str:
    draw = rng.random()
    if draw < 0.45:
        return "a"
    if draw < 0.85:
        return "b"
    return "tie" if draw < 0.95 else "both_bad"


def load_project(
    url: str, slug: str, judgments: int, seed: int, rater_ids: list[int]
) -> datagen.Setup:
    setup = datagen.make_project(
        url,
        slug=slug,
        raters=0 if rater_ids else RATERS,
        raters_per_pair=K,
        seed=seed,
        existing_rater_ids=rater_ids,
    )
    pool = datagen.TextPool(seed=seed, mean_words=60)
    spec = datagen.CorpusSpec(
        prompts=math.ceil(judgments / JUDGMENTS_PER_PROMPT),
        responses_per_prompt=RESPONSES_PER_PROMPT,
        models=MODELS,
        seed=seed,
    )
    with psycopg.connect(url) as conn:
        datagen.fast_load(conn)
        corpus = datagen.write_corpus(conn, setup, spec, pool)
        datagen.write_judgments(conn, setup, corpus, K, _choose, seed=seed)
    return setup


def export_query(project_id: int) -> tuple[str, dict[str, Any]]:
    """The export's per-judgment query (the votes format's) with its default selection."""
    from pickwise.exports.repository import _VOTES, Selection

    where, params = Selection(project_id=project_id).where()
    return _VOTES.format(where=where), params


def copy_out(url: str, project_id: int) -> dict[str, float]:
    """COPY (the export query) TO STDOUT, read to the end; seconds, rows and bytes."""
    query, params = export_query(project_id)
    started = time.perf_counter()
    rows = size = 0
    with (
        psycopg.connect(url) as conn,
        conn.cursor() as cursor,
        cursor.copy(f"COPY ({query}) TO STDOUT", params) as copy,
    ):
        for block in copy:
            size += len(block)
            rows += bytes(block).count(b"\n")
    return {"seconds": time.perf_counter() - started, "rows": rows, "bytes": size}


def cli_export(url: str, slug: str, out: Path, log: Path) -> dict[str, Any]:
    child = run_child(
        [*pickwise_command(), "export", slug, "--format", "trl", "--out", str(out)],
        child_env(url),
        timeout=3600,
        log=log,
    )
    if child.returncode != 0:
        raise RuntimeError(f"pickwise export failed:\n{child.output[-3000:]}")
    written = sum(path.stat().st_size for path in out.rglob("*.jsonl"))
    shutil.rmtree(out, ignore_errors=True)
    return {
        "seconds": child.seconds,
        "peak_rss_mb": child.peak_rss_mb,
        "cpu_seconds": child.cpu_seconds,
        "bytes": written,
    }


async def _download(base_url: str, project_id: int, token: str) -> tuple[float, int, int]:
    headers = {"Authorization": f"Bearer {token}"}
    started = time.perf_counter()
    size = lines = 0
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=3600) as client,
        client.stream(
            "GET",
            f"/api/v1/projects/{project_id}/export",
            params={"format": "trl"},
            headers=headers,
        ) as response,
    ):
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"export download: {response.status_code} {response.text[:500]}")
        async for chunk in response.aiter_raw():
            size += len(chunk)
            lines += chunk.count(b"\n")
    return time.perf_counter() - started, size, lines


def http_export(app: RunningApp, setup: datagen.Setup, pg_pid: int | None) -> dict[str, Any]:
    """One download; the server's peak RSS is measured from a reset just before it."""
    meter = CpuMeter({"app": app.pid, "postgres": pg_pid})
    reset = reset_peak_rss(app.pid)
    rss_before = peak_rss_mb(app.pid)
    before = meter.sample()
    seconds, size, lines = asyncio.run(_download(app.base_url, setup.project_id, setup.admin_token))
    cpu = CpuMeter.spent(before, meter.sample())
    return {
        "seconds": seconds,
        "bytes": size,
        "lines": lines,
        "peak_rss_mb": peak_rss_mb(app.pid),
        "rss_before_mb": rss_before,
        "peak_reset": reset,
        "cpu_s": cpu,
    }


def run(server: Server, size_name: str, workdir: Path | None = None) -> BenchResult:
    size = SIZES[size_name]
    started = time.perf_counter()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="pickwise-bench-export-"))
    result = BenchResult(
        name=NAME,
        size=size_name,
        params={
            "judgments_small": size.small,
            "judgments_large": size.large,
            "k": K,
            "responses_per_prompt": RESPONSES_PER_PROMPT,
            "format": "trl",
            "aggregation": "majority (default)",
        },
        server=server.describe(),
    )
    url = server.create_database("export")
    large = load_project(url, "export-large", size.large, seed=2, rater_ids=[])
    projects = {"large": large}
    if size.small is not None:
        projects["small"] = load_project(
            url, "export-small", size.small, seed=1, rater_ids=large.rater_ids
        )
    datagen.finish_load(url)
    pg_pid = postmaster_pid(url)

    runs: dict[str, dict[str, Any]] = {}
    for label, setup in projects.items():
        copy_out(url, setup.project_id)  # warm the cache; every side then reads warm data
        meter = CpuMeter({"postgres": pg_pid})
        before = meter.sample()
        runs[f"copy_{label}"] = copy_out(url, setup.project_id)
        runs[f"copy_{label}"]["cpu_s"] = CpuMeter.spent(before, meter.sample())
        before = meter.sample()
        runs[f"cli_{label}"] = cli_export(
            url, setup.slug, workdir / f"out-{label}", workdir / f"cli-{label}.log"
        )
        runs[f"cli_{label}"]["cpu_s"] = CpuMeter.spent(before, meter.sample())
    with serve(url, workers=1, log=workdir / "serve.log") as app:
        # Small first: the large download's peak is then the server's peak, reset or not.
        for label in sorted(projects, key=lambda name: name != "small"):
            runs[f"http_{label}"] = http_export(app, projects[label], pg_pid)

    judgments = {label: runs[f"copy_{label}"]["rows"] for label in projects}
    for label in projects:
        for kind, _title in PATHS:
            entry = runs[f"{kind}_{label}"]
            entry["rows"] = judgments[label]
            entry["rows_per_s"] = judgments[label] / entry["seconds"]

    big = _count(judgments["large"])
    copy_rate = runs["copy_large"]["rows_per_s"]
    for kind, title in PATHS[1:]:
        result.compare(
            f"{title} rows/s, {big} judgments",
            "rows/s",
            runs[f"{kind}_large"]["rows_per_s"],
            copy_rate,
            "COPY TO STDOUT",
            Target("ratio_at_least", RATIO_TARGET),
        )
    if "small" in projects:
        little = _count(judgments["small"])
        for kind, title in PATHS[1:]:
            result.compare(
                f"{title} peak RSS, {big} vs {little}",
                "MB",
                runs[f"{kind}_large"]["peak_rss_mb"],
                runs[f"{kind}_small"]["peak_rss_mb"],
                f"at {little}",
                Target("ratio_at_most", RSS_TARGET),
            )
    for kind, title in PATHS[1:]:
        result.compare(
            f"CPU per 1k judgments, {title} (pickwise + Postgres), {big}",
            "CPU ms",
            _cpu_ms_per_1k(runs[f"{kind}_large"], kind),
            _cpu_ms_per_1k(runs["copy_large"], "copy"),
            "COPY client + Postgres",
        )
    rows = []
    for label in sorted(projects, key=lambda name: name != "small"):
        for kind, title in PATHS:
            entry = runs[f"{kind}_{label}"]
            cpu = entry.get("cpu_s", {})
            client_cpu = entry.get("cpu_seconds") if kind == "cli" else cpu.get("client")
            if kind == "http":
                client_cpu = cpu.get("app")
            rows.append(
                [
                    title,
                    judgments[label],
                    entry["seconds"],
                    entry["rows_per_s"],
                    entry["bytes"] / 1e6,
                    client_cpu,
                    cpu.get("postgres"),
                    entry.get("peak_rss_mb"),
                ]
            )
    result.details.append(
        DetailTable(
            "export runs (CPU s: pickwise process or COPY client / Postgres)",
            [
                "path",
                "judgments",
                "seconds",
                "rows/s",
                "MB out",
                "CPU s",
                "Postgres CPU s",
                "peak RSS MB",
            ],
            rows,
        )
    )
    result.notes.append(
        "Rows/s counts judgments read. The trl files hold one row per pair kept by majority "
        "vote (ties and no-majority pairs are left out), so they are smaller than COPY's output."
    )
    result.raw = runs
    result.seconds = time.perf_counter() - started
    return result


def _cpu_ms_per_1k(entry: dict[str, Any], kind: str) -> float | None:
    cpu = entry.get("cpu_s", {})
    if cpu.get("postgres") is None:
        return None
    own = {"cli": entry.get("cpu_seconds"), "http": cpu.get("app"), "copy": cpu.get("client")}[kind]
    return (float(own or 0.0) + float(cpu["postgres"])) * 1e6 / float(entry["rows"])


def _count(value: int) -> str:
    if value >= 1_000_000:
        return f"{value / 1e6:.0f}M"
    if value >= 1000:
        return f"{value / 1e3:.0f}k"
    return str(value)
