"""Import: a JSONL file end to end through `pickwise import` (a subprocess), against COPY of
the same rows from prepared files on the same server.

Rows counted on both sides: prompts + responses + pairs. Both sides also write the pairs'
capacity slots (k = 1, the default), both with COPY.
Each import goes into a fresh database on the same server, so table sizes match.

Per task (one line: a prompt and two answers, in the pairs shape and in the responses shape),
imports are also held against the raw-records limit: COPY of the same file's lines, one
jsonb row each, into a scratch table — what Postgres takes to store the records at all.
Those imports run with `--search-later` (the batch is stored and ratable at the commit), and
the search catch-up that then makes the answers searchable runs next, timed on its own
(`pickwise search-catch-up`): both figures are printed, and the ratio with the catch-up
added. The throughput and memory runs above include the catch-up (plain `pickwise import`),
against a COPY whose answers get their words as they are written.
"""

import hashlib
import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from bench import datagen
from bench.app_server import child_env, serve
from bench.measure import ChildRun, CpuMeter, pickwise_command, postmaster_pid, run_child
from bench.postgres import Server
from bench.report import BenchResult, DetailTable, Target

NAME = "import"
MODELS = tuple(f"model-{index:02d}" for index in range(8))
RATIO_TARGET = 0.5
RSS_TARGET = 1.2


@dataclass(frozen=True)
class FileSpec:
    prompts: int
    responses: int
    mean_words: int

    @property
    def pairs(self) -> int:
        return self.prompts * self.responses * (self.responses - 1) // 2

    @property
    def rows(self) -> int:
        return self.prompts * (1 + self.responses) + self.pairs

    def label(self) -> str:
        return f"{_count(self.prompts)} × {self.responses}"


SHAPES = ("pairs", "responses")
# Two answers of about 140 words: ≈ 1.85 KB a task, as in the comparison with Label Studio.
TASK_WORDS = 140
TASK_RATIO_TARGET = 0.2


@dataclass(frozen=True)
class Size:
    main: FileSpec  # throughput against COPY
    # Memory at 10× fewer lines, same shape as rss_large; None skips the memory comparison.
    rss_small: FileSpec | None
    rss_large: FileSpec | None
    fixed_cost: bool = True  # also time a one-line import
    tasks: tuple[int, ...] = ()  # per-task imports, each shape, against the jsonb COPY


SIZES = {
    "full": Size(
        FileSpec(100_000, 4, 60),
        FileSpec(100_000, 2, 12),
        FileSpec(1_000_000, 2, 12),
        tasks=(10_000, 1_000_000),
    ),
    "quick": Size(
        FileSpec(5_000, 4, 60),
        FileSpec(5_000, 2, 12),
        FileSpec(50_000, 2, 12),
        tasks=(10_000,),
    ),
    "smoke": Size(FileSpec(200, 4, 30), None, None, fixed_cost=False, tasks=(100,)),
}


def _count(value: int) -> str:
    if value >= 1_000_000 and value % 1_000_000 == 0:
        return f"{value // 1_000_000}M"
    if value >= 1000 and value % 1000 == 0:
        return f"{value // 1000}k"
    return str(value)


def _turns(question: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": question}]


def write_jsonl(path: Path, spec: FileSpec, seed: int) -> int:
    """The import file: one prompt a line with its responses; returns its size in bytes."""
    pool = datagen.TextPool(seed=seed, mean_words=spec.mean_words)
    models = MODELS[: max(spec.responses, 2)]
    with path.open("w", encoding="utf-8") as out:
        for offset in range(spec.prompts):
            record = {
                "id": f"p{offset:08d}",
                "prompt": f"{pool.question(offset)} ({offset})",
                "responses": [
                    {
                        "model": models[index],
                        "content": f"{pool.answer(offset * 7 + index * 13).text} (#{index})",
                    }
                    for index in range(spec.responses)
                ],
            }
            out.write(json.dumps(record, ensure_ascii=False))
            out.write("\n")
    return path.stat().st_size


def write_tasks(path: Path, tasks: int, shape: str, seed: int) -> int:
    """One task a line: a prompt and two answers, as a ready-made pair (`response_a`,
    `response_b`) or as a list of two responses; returns the file's size in bytes."""
    pool = datagen.TextPool(seed=seed, mean_words=TASK_WORDS)
    with path.open("w", encoding="utf-8") as out:
        for offset in range(tasks):
            answers = [
                f"{pool.answer(offset * 7 + index * 13).text} (#{index})" for index in range(2)
            ]
            record: dict[str, Any] = {
                "id": f"t{offset:08d}",
                "prompt": f"{pool.question(offset)} ({offset})",
            }
            if shape == "pairs":
                record.update(
                    response_a=answers[0],
                    response_b=answers[1],
                    model_a=MODELS[0],
                    model_b=MODELS[1],
                )
            else:
                record["responses"] = [
                    {"model": MODELS[index], "content": answer}
                    for index, answer in enumerate(answers)
                ]
            out.write(json.dumps(record, ensure_ascii=False))
            out.write("\n")
    return path.stat().st_size


# CSV with quote and delimiter characters that JSON text never holds unescaped: each line
# goes in as it is, and Postgres parses it into jsonb.
_RAW_COPY = (
    "COPY raw_records (record) FROM STDIN WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')"
)


def jsonb_copy_limit(url: str, path: Path) -> float:
    """Seconds to COPY the file's lines, one jsonb row each, into a new table (connect to
    commit): the least any import of these records can cost on this server."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        conn.execute("CREATE TABLE raw_records (record jsonb NOT NULL)")
        with conn.cursor().copy(_RAW_COPY) as copy, path.open("rb") as source:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
    return time.perf_counter() - started


def http_import(server: Server, name: str, path: Path, workdir: Path) -> dict[str, Any]:
    """The file sent to a running `pickwise serve` (1 worker) as an admin's API upload, into
    a fresh project, timed from the request's first byte to the answer: an import as Label
    Studio's was measured beside pickwise's (issue 20), with no command start-up in it. The
    answers are made searchable afterwards by the app in the background, not timed here."""
    url, setup = _fresh_project(server, name)
    env = {"IMPORT_MAX_FILE_BYTES": str(max(2_000_000_000, path.stat().st_size))}
    with serve(url, workers=1, log=workdir / f"{name}.log", env=env) as app:
        meter = CpuMeter({"app": app.pid, "postgres": postmaster_pid(server.admin_url)})
        with httpx.Client(base_url=app.base_url, timeout=3600) as client, path.open("rb") as body:
            before = meter.sample()
            started = time.perf_counter()
            reply = client.post(
                f"/api/v1/projects/{setup.project_id}/batches",
                params={"filename": path.name},
                headers={
                    "Authorization": f"Bearer {setup.admin_token}",
                    "Content-Type": "application/x-ndjson",
                },
                content=body,
            )
            seconds = time.perf_counter() - started
            spent = CpuMeter.spent(before, meter.sample())
    if reply.status_code != 201:
        raise RuntimeError(f"HTTP import failed ({reply.status_code}): {reply.text[:3000]}")
    return {
        "seconds": seconds,
        "app_cpu_seconds": spent.get("app"),
        "postgres_cpu_seconds": spent.get("postgres"),
        "pairs_new": reply.json()["pairs_new"],
    }


def task_runs(
    server: Server, tasks: int, workdir: Path, meter: CpuMeter, *, over_http: bool = False
) -> dict[str, dict[str, Any]]:
    """Each shape: `pickwise import` of `tasks` lines, then the jsonb COPY of the same file;
    with `over_http`, the same file sent to a running app too."""
    runs: dict[str, dict[str, Any]] = {}
    for shape in SHAPES:
        path = workdir / f"tasks-{shape}-{tasks}.jsonl"
        file_bytes = write_tasks(path, tasks, shape, seed=11)
        http = (
            http_import(server, f"import_http_{shape}_{tasks}", path, workdir)
            if over_http
            else None
        )
        url, setup = _fresh_project(server, f"import_tasks_{shape}_{tasks}")
        before = meter.sample()
        child = pickwise_import(
            url, setup.slug, path, workdir / f"tasks-{shape}.log", search_later=True
        )
        spent = CpuMeter.spent(before, meter.sample())
        before = meter.sample()
        catch_up = search_catch_up(url, workdir / f"catch-up-{shape}.log")
        catch_up_spent = CpuMeter.spent(before, meter.sample())
        answers, catch_up_seconds = _caught_up(catch_up.output)
        scratch = server.create_database(f"import_raw_{shape}_{tasks}", migrate=False)
        before = meter.sample()
        limit_seconds = jsonb_copy_limit(scratch, path)
        limit_spent = CpuMeter.spent(before, meter.sample())
        path.unlink()
        runs[shape] = {
            **_child_summary(child),
            "tasks": tasks,
            "file_bytes": file_bytes,
            "tasks_per_s": tasks / child.seconds,
            "postgres_cpu_seconds": spent.get("postgres"),
            "limit_seconds": limit_seconds,
            "limit_tasks_per_s": tasks / limit_seconds,
            "limit_postgres_cpu_seconds": limit_spent.get("postgres"),
            # The catch-up's own time (from its report, without the command's start-up) and
            # the whole command's.
            "catch_up_answers": answers,
            "catch_up_seconds": catch_up_seconds,
            "catch_up_command_seconds": catch_up.seconds,
            "catch_up_answers_per_s": answers / catch_up_seconds if catch_up_seconds else None,
            "catch_up_postgres_cpu_seconds": catch_up_spent.get("postgres"),
            "tasks_per_s_with_catch_up": tasks / (child.seconds + catch_up_seconds),
        }
        if http is not None:
            runs[shape]["http"] = {**http, "tasks_per_s": tasks / http["seconds"]}
    return runs


_CAUGHT_UP = re.compile(r"Searchable: ([\d,]+) answers in ([\d.]+) s")


def _caught_up(output: str) -> tuple[int, float]:
    found = _CAUGHT_UP.search(output)
    if found is None:
        raise RuntimeError(f"no catch-up report in:\n{output[-2000:]}")
    return int(found.group(1).replace(",", "")), float(found.group(2))


def write_copy_files(
    folder: Path, spec: FileSpec, seed: int, project_id: int, batch_id: int
) -> dict[str, Path]:
    """The same rows pickwise would write, in COPY text format, ids from 1."""
    pool = datagen.TextPool(seed=seed, mean_words=spec.mean_words)
    models = MODELS[: max(spec.responses, 2)]
    combinations = [
        (first, second)
        for first in range(spec.responses)
        for second in range(first + 1, spec.responses)
    ]

    def prompts() -> Any:
        for offset in range(spec.prompts):
            turns = json.dumps(_turns(f"{pool.question(offset)} ({offset})"), ensure_ascii=False)
            yield (
                offset + 1,
                project_id,
                batch_id,
                f"p{offset:08d}",
                None,
                turns,
                hashlib.sha256(turns.encode()).hexdigest(),
                "{}",
            )

    def responses() -> Any:
        for offset in range(spec.prompts):
            for index in range(spec.responses):
                yield (
                    offset * spec.responses + index + 1,
                    project_id,
                    offset + 1,
                    str(index),
                    models[index],
                    f"{pool.answer(offset * 7 + index * 13).text} (#{index})",
                    "{}",
                )

    def pairs() -> Any:
        pair_id = 0
        for offset in range(spec.prompts):
            base = offset * spec.responses + 1
            for first, second in combinations:
                pair_id += 1
                yield (
                    pair_id,
                    project_id,
                    offset + 1,
                    batch_id,
                    base + first,
                    base + second,
                    False,
                    None,
                    "active",
                )

    def slots() -> Any:
        for pair_id in range(1, spec.pairs + 1):
            yield (pair_id, project_id, pair_id, 1, "open", None, None, pair_id)

    files = {
        "prompts": folder / "prompts.copy",
        "responses": folder / "responses.copy",
        "pairs": folder / "pairs.copy",
        "pair_slots": folder / "pair_slots.copy",
    }
    datagen.write_copy_file(files["prompts"], prompts())
    datagen.write_copy_file(files["responses"], responses())
    datagen.write_copy_file(files["pairs"], pairs())
    datagen.write_copy_file(files["pair_slots"], slots())
    return files


_COLUMNS = {
    "prompts": datagen.PROMPT_COLUMNS,
    "responses": datagen.RESPONSE_COLUMNS,
    "pairs": datagen.PAIR_COLUMNS,
    "pair_slots": datagen.SLOT_COLUMNS,
}


def copy_limit(url: str, files: dict[str, Path]) -> float:
    """Seconds to COPY the prepared files in one transaction (connect to commit)."""
    started = time.perf_counter()
    with psycopg.connect(url) as conn:
        for table, path in files.items():
            with path.open("rb") as source:
                datagen.copy_file_in(conn, table, _COLUMNS[table], source)
    return time.perf_counter() - started


def pickwise_import(
    url: str, slug: str, path: Path, log: Path, *, search_later: bool = False
) -> ChildRun:
    # 1M tasks of ~2 KB make a file over the default 2 GB limit, which an import refuses.
    env = {**child_env(url), "IMPORT_MAX_FILE_BYTES": str(max(2_000_000_000, path.stat().st_size))}
    command = [*pickwise_command(), "import", slug, str(path)]
    if search_later:
        command.append("--search-later")
    run = run_child(command, env, timeout=3600, log=log)
    if run.returncode != 0 or "Imported" not in run.output:
        raise RuntimeError(f"pickwise import failed ({run.returncode}):\n{run.output[-3000:]}")
    return run


def search_catch_up(url: str, log: Path) -> ChildRun:
    run = run_child([*pickwise_command(), "search-catch-up"], child_env(url), timeout=3600, log=log)
    if run.returncode != 0 or "Searchable" not in run.output:
        raise RuntimeError(f"search catch-up failed ({run.returncode}):\n{run.output[-3000:]}")
    return run


def _fresh_project(server: Server, name: str) -> tuple[str, datagen.Setup]:
    url = server.create_database(name)
    return url, datagen.make_project(url, slug="bench-import", raters=0)


def run(server: Server, size_name: str, workdir: Path | None = None) -> BenchResult:
    size = SIZES[size_name]
    started = time.perf_counter()
    workdir = workdir or Path(tempfile.mkdtemp(prefix="pickwise-bench-import-"))
    result = BenchResult(
        name=NAME,
        size=size_name,
        params={
            "main": vars(size.main),
            "rss_small": vars(size.rss_small) if size.rss_small else None,
            "rss_large": vars(size.rss_large) if size.rss_large else None,
            "raters_per_pair": 1,
            "pairing": "all",
            "tasks": list(size.tasks),
            "task_words": TASK_WORDS,
        },
        server=server.describe(),
    )
    specs = {"main": size.main}
    if size.rss_small and size.rss_large:
        specs.update(rss_small=size.rss_small, rss_large=size.rss_large)
    runs: dict[str, dict[str, Any]] = {}
    meter = CpuMeter({})
    for label, spec in specs.items():
        path = workdir / f"{label}.jsonl"
        file_bytes = write_jsonl(path, spec, seed=7)
        url, setup = _fresh_project(server, f"import_{label}")
        meter = meter if meter.trees else CpuMeter({"postgres": postmaster_pid(url)})
        before = meter.sample()
        child = pickwise_import(url, setup.slug, path, workdir / f"{label}.log")
        spent = CpuMeter.spent(before, meter.sample())
        runs[label] = {
            **_child_summary(child),
            "postgres_cpu_seconds": spent.get("postgres"),
            "file_bytes": file_bytes,
            "rows": spec.rows,
            "lines": spec.prompts,
            "rows_per_s": spec.rows / child.seconds,
        }
        path.unlink()

    if size.fixed_cost:
        # One run of the command on one line: interpreter, imports, connecting. Run as the
        # imports above are (the search catch-up after the commit, which loads SQLAlchemy:
        # ~0.4 s more) and as the task imports below are (`--search-later`), whose rate after
        # start-up leaves out the latter.
        tiny = workdir / "tiny.jsonl"
        write_jsonl(tiny, FileSpec(1, 2, 10), seed=1)
        url, setup = _fresh_project(server, "import_tiny")
        runs["tiny"] = _child_summary(pickwise_import(url, setup.slug, tiny, workdir / "t.log"))
        url, setup = _fresh_project(server, "import_tiny_search_later")
        runs["tiny_search_later"] = _child_summary(
            pickwise_import(url, setup.slug, tiny, workdir / "tl.log", search_later=True)
        )

    meter = meter if meter.trees else CpuMeter({"postgres": postmaster_pid(server.admin_url)})
    # Over HTTP at the smallest size only: a 1M-task file is ~2 GB in one request.
    tasks = {
        str(count): task_runs(server, count, workdir, meter, over_http=count == min(size.tasks))
        for count in size.tasks
    }
    runs["tasks"] = tasks

    limit_url, limit_setup = _fresh_project(server, "import_copy")
    files = write_copy_files(workdir, size.main, 7, limit_setup.project_id, limit_setup.batch_id)
    before = meter.sample()
    copy_seconds = copy_limit(limit_url, files)
    spent = CpuMeter.spent(before, meter.sample())
    runs["copy"] = {
        "seconds": copy_seconds,
        "rows": size.main.rows,
        "rows_per_s": size.main.rows / copy_seconds,
        "bytes": sum(path.stat().st_size for path in files.values()),
        "cpu_seconds": spent["client"],
        "postgres_cpu_seconds": spent.get("postgres"),
    }
    for path in files.values():
        path.unlink()

    main, copy = runs["main"], runs["copy"]
    result.compare(
        f"import rows/s, {size.main.label()} ({size.main.rows:,} rows)",
        "rows/s",
        main["rows_per_s"],
        copy["rows_per_s"],
        "COPY of the same rows",
        Target("ratio_at_least", RATIO_TARGET),
    )
    task_table = []
    startup = runs.get("tiny_search_later", {}).get("seconds")
    for count, by_shape in tasks.items():
        for shape, entry in by_shape.items():
            result.compare(
                f"import tasks/s, {shape} shape, {_count(int(count))} tasks",
                "tasks/s",
                entry["tasks_per_s"],
                entry["limit_tasks_per_s"],
                "COPY of the same records, one jsonb row each",
                Target("ratio_at_least", TASK_RATIO_TARGET),
            )
            if "http" in entry:
                result.compare(
                    f"import tasks/s over HTTP (API upload to a running app), {shape} shape, "
                    f"{_count(int(count))} tasks",
                    "tasks/s",
                    entry["http"]["tasks_per_s"],
                    entry["limit_tasks_per_s"],
                    "COPY of the same records, one jsonb row each",
                    Target("ratio_at_least", TASK_RATIO_TARGET),
                )
            result.compare(
                f"import + search catch-up tasks/s, {shape} shape, {_count(int(count))} tasks",
                "tasks/s",
                entry["tasks_per_s_with_catch_up"],
                entry["limit_tasks_per_s"],
                "COPY of the same records, one jsonb row each",
            )
            task_table.append(
                [
                    shape,
                    entry["tasks"],
                    entry["file_bytes"] / entry["tasks"],
                    entry["seconds"],
                    entry["tasks_per_s"],
                    _net_rate(entry["tasks"], entry["seconds"], startup),
                    entry.get("http", {}).get("tasks_per_s"),
                    entry.get("http", {}).get("app_cpu_seconds"),
                    entry["limit_tasks_per_s"],
                    entry["tasks_per_s"] / entry["limit_tasks_per_s"],
                    entry["cpu_seconds"],
                    entry["postgres_cpu_seconds"],
                    entry["limit_postgres_cpu_seconds"],
                    entry["peak_rss_mb"],
                    entry["catch_up_seconds"],
                    entry["catch_up_answers_per_s"],
                    entry["catch_up_postgres_cpu_seconds"],
                ]
            )
    if task_table:
        result.details.append(
            DetailTable(
                "tasks (a prompt and two answers a line): pickwise import --search-later against "
                "COPY of the same lines as jsonb rows (the import's wall time includes "
                "interpreter start; 'after start-up' leaves out a one-line --search-later "
                "import's time), "
                "the same file sent to a running app's API, "
                "then the search catch-up that makes the answers searchable",
                [
                    "shape",
                    "tasks",
                    "bytes/task",
                    "seconds",
                    "tasks/s",
                    "tasks/s after start-up",
                    "over HTTP tasks/s",
                    "over HTTP app CPU s",
                    "jsonb COPY tasks/s",
                    "ratio",
                    "CPU s",
                    "Postgres CPU s",
                    "COPY Postgres CPU s",
                    "peak RSS MB",
                    "catch-up s",
                    "catch-up answers/s",
                    "catch-up Postgres CPU s",
                ],
                task_table,
            )
        )
    if len(size.tasks) > 1:
        # Memory flat with size, per task too: the largest task import against the smallest.
        small, large = str(min(size.tasks)), str(max(size.tasks))
        result.compare(
            f"import peak RSS, {_count(int(large))} vs {_count(int(small))} tasks, pairs shape",
            "MB",
            tasks[large]["pairs"]["peak_rss_mb"],
            tasks[small]["pairs"]["peak_rss_mb"],
            f"at {_count(int(small))} tasks",
            Target("ratio_at_most", RSS_TARGET),
        )
    if size.rss_small and size.rss_large:
        result.compare(
            f"import peak RSS, {size.rss_large.label()} vs {size.rss_small.label()} lines",
            "MB",
            runs["rss_large"]["peak_rss_mb"],
            runs["rss_small"]["peak_rss_mb"],
            f"at {_count(size.rss_small.prompts)} lines",
            Target("ratio_at_most", RSS_TARGET),
        )
    result.compare(
        f"CPU for the {size.main.label()} import (pickwise + Postgres)",
        "CPU s",
        _total_cpu(main),
        _total_cpu(copy),
        "COPY client + Postgres",
    )
    table = []
    for label, spec in specs.items():
        entry = runs[label]
        table.append(
            [
                spec.label(),
                entry["rows"],
                entry["file_bytes"] / 1e6,
                entry["seconds"],
                entry["rows_per_s"],
                entry["lines"] / entry["seconds"],
                entry["cpu_seconds"],
                entry["postgres_cpu_seconds"],
                entry["peak_rss_mb"],
            ]
        )
    for label, key in (
        ("1 line (fixed cost)", "tiny"),
        ("1 line, --search-later (fixed cost of the task imports)", "tiny_search_later"),
    ):
        tiny_run = runs.get(key, {})
        table.append(
            [
                label,
                5,
                None,
                tiny_run.get("seconds"),
                None,
                None,
                tiny_run.get("cpu_seconds"),
                None,
                tiny_run.get("peak_rss_mb"),
            ]
        )
    table.append(
        [
            f"COPY limit, {size.main.label()}",
            copy["rows"],
            copy["bytes"] / 1e6,
            copy["seconds"],
            copy["rows_per_s"],
            size.main.prompts / copy["seconds"],
            copy["cpu_seconds"],
            copy["postgres_cpu_seconds"],
            None,
        ]
    )
    result.details.append(
        DetailTable(
            "import runs (wall time includes interpreter start; CPU s of the pickwise process "
            "or the COPY client, and of Postgres)",
            [
                "file",
                "rows",
                "MB",
                "seconds",
                "rows/s",
                "lines/s",
                "CPU s",
                "Postgres CPU s",
                "peak RSS MB",
            ],
            table,
        )
    )
    result.notes.append("Rows = prompts + responses + pairs; both sides also write the slots.")
    if size.rss_small and size.rss_large:
        result.notes.append(
            f"The {size.rss_large.label()} and {size.rss_small.label()} files have 2 short "
            f"responses a line (about {size.rss_large.mean_words} words) so the 1M-line run "
            "stays fast; their peak RSS is compared like for like."
        )
    result.raw = runs
    result.seconds = time.perf_counter() - started
    return result


def _net_rate(tasks: int, seconds: float, startup: float | None) -> float | None:
    if startup is None or seconds <= startup:
        return None
    return tasks / (seconds - startup)


def _total_cpu(entry: dict[str, Any]) -> float | None:
    if entry.get("postgres_cpu_seconds") is None:
        return None
    return float(entry["cpu_seconds"]) + float(entry["postgres_cpu_seconds"])


def _child_summary(child: ChildRun) -> dict[str, Any]:
    return {
        "seconds": child.seconds,
        "peak_rss_mb": child.peak_rss_mb,
        "cpu_seconds": child.cpu_seconds,
        "returncode": child.returncode,
    }
