"""Run benchmarks one after the other, each on its own fresh Postgres."""

import shutil
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from bench import analytics, conversations, explorer, exporting, importing, login_storm, rater_loop
from bench.measure import load_average
from bench.postgres import Server, fresh_server, kept_server
from bench.report import RESULTS_DIR, BenchResult, console, print_result, write_result


class Benchmark(Protocol):
    def __call__(
        self, server: Server, size_name: str, workdir: Path | None = None
    ) -> BenchResult: ...


BENCHMARKS: dict[str, Benchmark] = {
    rater_loop.NAME: rater_loop.run,
    importing.NAME: importing.run,
    exporting.NAME: exporting.run,
    analytics.NAME: analytics.run,
    login_storm.NAME: login_storm.run,
    explorer.NAME: explorer.run,
    conversations.NAME: conversations.run,
}


# Benchmarks that can reuse data loaded by an earlier run (`--keep-data`).
REUSES_DATA = (explorer.NAME,)


def run_benchmarks(names: Sequence[str], size: str, keep_data: Path | None = None) -> list[Path]:
    written = []
    started = time.perf_counter()
    for name in names:
        console.rule(f"{name} ({size})")
        workdir = Path(tempfile.mkdtemp(prefix=f"pickwise-bench-{name}-"))
        kept = keep_data is not None and name in REUSES_DATA
        with kept_server(keep_data) if kept and keep_data else fresh_server() as server:
            try:
                result = BENCHMARKS[name](server, size, workdir)
            except BaseException:
                console.print(f"[red]{name} failed[/red]; logs kept in {workdir}")
                raise
        shutil.rmtree(workdir, ignore_errors=True)
        result.load_after = load_average()
        print_result(result)
        # Only full-size runs replace the recorded results; smaller or partial ones go beside them.
        directory = RESULTS_DIR if result.size == "full" else RESULTS_DIR / result.size
        path = write_result(result, directory)
        console.print(f"  wrote {path}")
        written.append(path)
    console.print(f"all done in {time.perf_counter() - started:.0f} s")
    return written
