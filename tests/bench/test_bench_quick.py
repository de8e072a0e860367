"""Smoke test of the benchmarks: the smallest data of each, one iteration, no timings checked.

Keeps `python -m bench` from rotting as the code it measures changes. Each benchmark makes
its own databases on the test server and drops them.
"""

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import runner
from bench.postgres import Server, fresh_server
from bench.report import BenchResult, write_result


@pytest.fixture(scope="module")
def bench_server(server_url: str) -> Iterator[Server]:
    with fresh_server(server_url) as server:
        yield server


@pytest.mark.parametrize("name", list(runner.BENCHMARKS))
def test_benchmark_runs_on_the_smallest_data(
    name: str, bench_server: Server, tmp_path: Path
) -> None:
    result: BenchResult = runner.BENCHMARKS[name](bench_server, "smoke", tmp_path)

    assert result.comparisons, "a benchmark reports at least one comparison"
    for line in result.comparisons:
        assert line.pickwise is not None, line.metric
        assert line.reference is not None, line.metric
    written = json.loads(write_result(result, tmp_path / "results").read_text())
    assert written["benchmark"] == name
    assert written["machine"]["cores"]
    if name == "import":
        # Each shape is also sent to a running app's API, as Label Studio's import was timed.
        over_http = [line for line in written["comparisons"] if "over HTTP" in line["metric"]]
        assert len(over_http) == 2, [line["metric"] for line in written["comparisons"]]
        tasks = written["raw"]["tasks"]["100"]
        assert all(tasks[shape]["http"]["pairs_new"] == 100 for shape in ("pairs", "responses"))
    if name == "rater-loop":
        # The simulated raters' HTTP client must really get pairs and store judgments.
        runs = written["details"][0]
        loops, errors = runs["columns"].index("loops"), runs["columns"].index("errors")
        assert all(row[loops] > 0 and row[errors] == 0 for row in runs["rows"]), runs["rows"]
        # The rating page's loop too: its forms, parsed from the pages, store judgments.
        assert any(str(row[0]).endswith(" page") for row in runs["rows"]), runs["rows"]
        assert any(
            line["metric"].startswith("app CPU per judgment, rating page")
            for line in written["comparisons"]
        )


def test_the_rater_loop_keeps_its_two_request_mode(
    bench_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--requests-per-judgment 2` (GET …/next, then POST …/judgment) stays runnable for A/B
    against the default one-request loop."""
    from bench import rater_loop

    monkeypatch.setenv(rater_loop.REQUESTS_ENV, "2")
    result = rater_loop.run(bench_server, "smoke", tmp_path)
    assert result.params["requests_per_judgment"] == 2
    runs = result.details[0]
    loops, errors = runs.columns.index("loops"), runs.columns.index("errors")
    submit = runs.columns.index("submit p50")
    # The rating page's loop is one request (the form's POST) whatever the API loop sends.
    api_rows = [row for row in runs.rows if not str(row[0]).startswith("raw")]
    pickwise_rows = [row for row in api_rows if not str(row[0]).endswith(" page")]
    assert all(row[loops] > 0 and row[errors] == 0 for row in runs.rows), runs.rows
    # Two requests: the submit is timed on its own.
    assert all(row[submit] is not None for row in pickwise_rows)


def test_the_explorer_reuses_kept_data(
    bench_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--keep-data`: the first run loads and records what it loaded; a later run finds the
    database and the record, upgrades the database and measures the same projects without
    loading anything."""
    import dataclasses

    import psycopg

    from bench import explorer

    kept = dataclasses.replace(bench_server, created=[], kept=tmp_path)
    for run in ("first", "second"):
        (tmp_path / run).mkdir()
    try:
        first = explorer.run(kept, "smoke", tmp_path / "first")
        assert (tmp_path / "explorer_smoke.json").exists()

        def no_load(*args: object, **kwargs: object) -> None:
            raise AssertionError("kept data was loaded again")

        monkeypatch.setattr(explorer, "load_project", no_load)
        second = explorer.run(kept, "smoke", tmp_path / "second")
        assert second.raw["answers"] == first.raw["answers"]
        assert second.details[1].rows[0][:3] == first.details[1].rows[0][:3]  # same project
    finally:
        with psycopg.connect(bench_server.admin_url, autocommit=True) as conn:
            conn.execute('DROP DATABASE IF EXISTS "pickwise_bench_explorer_smoke" WITH (FORCE)')


def test_the_rater_loop_runs_its_paced_part_alone_and_counts_its_samples(
    bench_server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--paced-only`: each server's paced run and the raw limit's, nothing else; every
    paced figure says how many samples it rests on, in the comparisons and the JSON."""
    from bench import rater_loop

    monkeypatch.setenv(rater_loop.PACED_ONLY_ENV, "1")
    result = rater_loop.run(bench_server, "smoke", tmp_path)
    assert result.size == "smoke-paced" and result.params["paced_only"]
    assert [line.metric.startswith("next-pair p99") for line in result.comparisons] == [True]
    (line,) = result.comparisons
    assert line.samples is not None and all(n > 0 for n in line.samples)
    (table,) = result.details
    samples = table.columns.index("samples")
    # One request stores a judgment and leases the next pair: its limit is the raw loop's
    # whole judgment (claim + submit), listed beside the raw claim alone.
    assert line.reference_name == "raw claim + submit p99"
    rows = {row[0]: row for row in table.rows}
    assert {label: row[samples] for label, row in rows.items()} == {
        "1w": line.samples[0],
        "raw": line.samples[1],
        "raw claim + submit": line.samples[1],
    }
    p99 = table.columns.index("p99")
    assert line.reference == rows["raw claim + submit"][p99] > rows["raw"][p99]
    written = json.loads(write_result(result, tmp_path / "results").read_text())
    assert written["comparisons"][0]["samples"] == list(line.samples)
    assert written["raw"]["paced"]["1w"]["first_ms"]["n"] == line.samples[0]
    assert written["raw"]["paced"]["raw"]["judgment_ms"]["p99"] == line.reference
    assert set(written["raw"]) == {"paced"}
