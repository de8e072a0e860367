"""A/B of the rater loop: the same load against variants of the server, run alternately.

    python -m bench.rater_ab [--seconds 8] [--raters 16] [--rounds 3] [--prefill 0]
                             [--think 0] [--settle 3] [--summary-every N] VARIANT...

VARIANT is `name:requests[:backend[:workers]]`: `requests` is 1 (POST …/judgment?next=true),
k (the same with an Idempotency-Key, as pickwise.client sends it), p (the rating page's choice
form, with a login cookie) or 2 (GET …/next + POST …/judgment); `backend`, if given, is a
folder whose `pickwise` package the server imports instead of this tree's (e.g. `git worktree
add /tmp/old <commit>` → `old:1:/tmp/old/backend`; empty for this tree's); `workers` is the
server's worker processes (1 if not given). `raw` is the psycopg loop of the rater-loop
benchmark. `--prefill SECONDS` first gives every rater judgments over the API for that long
(as in the bench, whose page loop runs after the API runs: the raters' counts and summaries
then cover hundreds of choices).

Each variant has its own server process and its own database, loaded alike; the
runs go A, B, …, A, B, … so a machine whose speed drifts affects each variant alike. It
prints CPU ms per judgment of the app and Postgres from /proc, per run and as medians.

`--summary-every N` sets the project's milestone (the page loop's summary every N judgments;
20 otherwise), e.g. 1 to time the milestone's requests alone.

`--think SECONDS` paces the raters as the rater-loop bench's paced run does (`Pace`: think
time exponential with that mean, random starts, loops started in the first `--settle`
seconds not recorded): the server is then not saturated, and what counts is the latency of
one judgment, so each run also prints its p50, p99 and samples and the medians include them
(`--think 1 --seconds 60` is the bench's paced run, give or take its settle).
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg

from bench import datagen, rater_loop
from bench.app_server import serve
from bench.measure import CpuMeter, latency_ms, postmaster_pid
from bench.postgres import fresh_server
from bench.rater_loop import REQUESTS_ENV, RunStats


@dataclass(frozen=True)
class Variant:
    name: str
    requests: int  # 0 for the raw psycopg loop
    backend: str | None
    keyed: bool = False  # each answer with an Idempotency-Key
    pages: bool = False  # the rating page's form, not the API
    workers: int = 1

    @classmethod
    def parse(cls, text: str) -> "Variant":
        if text == "raw":
            return cls("raw", 0, None)
        name, requests, *rest = text.split(":", 3)
        if requests not in ("1", "2", "k", "p"):
            raise argparse.ArgumentTypeError(f"{text!r}: requests must be 1, 2, k or p")
        count = 2 if requests == "2" else 1
        folder = rest[0] if rest and rest[0] else None
        workers = int(rest[1]) if len(rest) > 1 else 1
        pages = requests == "p"
        return cls(name, count, folder, keyed=requests == "k", pages=pages, workers=workers)


def _one_run(
    variant: Variant, url: str, base_url: str, setup: datagen.Setup, args: argparse.Namespace
) -> RunStats:
    if variant.requests == 0:
        return asyncio.run(
            rater_loop.raw_run(
                url,
                setup.rater_ids[: args.raters],
                setup.project_id,
                args.seconds,
                10**6,
                getattr(args, "think", 0.0),
                getattr(args, "settle", 0.0) if getattr(args, "think", 0.0) else 0.0,
            )
        )
    os.environ[REQUESTS_ENV] = str(variant.requests)
    cookies = setup.rater_cookies[: args.raters] if variant.pages else None
    think = getattr(args, "think", 0.0)
    return asyncio.run(
        rater_loop.http_run(
            base_url,
            setup.rater_tokens[: args.raters],
            setup.project_id,
            args.seconds,
            10**6,
            think,
            getattr(args, "settle", 0.0) if think else 0.0,
            cookies=cookies,
            keyed=variant.keyed,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="+", type=Variant.parse)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--raters", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--prefill", type=float, default=0.0)
    parser.add_argument("--think", type=float, default=0.0, help="mean think time (paced)")
    parser.add_argument("--settle", type=float, default=3.0, help="paced: unrecorded start")
    parser.add_argument(
        "--summary-every",
        type=int,
        default=None,
        help="the project's summary_every (the page loop's milestone; the bench's default 20)",
    )
    args = parser.parse_args()
    size = replace(
        rater_loop.SIZES["quick"],
        pairs=args.pairs,
        concurrency=(args.raters,),
        seconds=args.seconds,
        max_loops=10**6,
        workers=(1,),
    )
    workdir = Path(tempfile.mkdtemp(prefix="pickwise-rater-ab-"))
    results: dict[str, list[dict[str, float]]] = {v.name: [] for v in args.variants}
    with fresh_server() as server, ExitStack() as stack:
        urls, setups, apps = {}, {}, {}
        for variant in args.variants:
            urls[variant.name] = server.create_database(f"ab_{variant.name}")
            setups[variant.name] = rater_loop._load(
                urls[variant.name], size, variant.name, args.raters, seed=0
            )
        for url in urls.values():
            datagen.finish_load(url)
            if args.summary_every is not None:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute("UPDATE projects SET summary_every = %s", (args.summary_every,))
        pg_pid = postmaster_pid(next(iter(urls.values())))
        for variant in args.variants:
            if variant.requests:
                paths = [variant.backend, os.environ.get("PYTHONPATH")]
                env = {"PYTHONPATH": ":".join(p for p in paths if p)}
                apps[variant.name] = stack.enter_context(
                    serve(
                        urls[variant.name],
                        workers=variant.workers,
                        log=workdir / f"{variant.name}.log",
                        env=env,
                    )
                )
        for variant in args.variants:  # warm-up: caches, prepared statements
            app = apps.get(variant.name)
            if app and args.prefill:
                _one_run(
                    replace(variant, requests=1, pages=False),
                    urls[variant.name],
                    app.base_url,
                    setups[variant.name],
                    argparse.Namespace(raters=args.raters, seconds=args.prefill),
                )
            _one_run(
                variant,
                urls[variant.name],
                app.base_url if app else "",
                setups[variant.name],
                argparse.Namespace(raters=4, seconds=1.5),
            )
        for round_no in range(args.rounds):
            for variant in args.variants:
                app = apps.get(variant.name)
                rater_loop._vacuum(urls[variant.name])
                meter = CpuMeter({"app": app.pid if app else None, "postgres": pg_pid})
                before = meter.sample()
                stats = _one_run(
                    variant,
                    urls[variant.name],
                    app.base_url if app else "",
                    setups[variant.name],
                    args,
                )
                time.sleep(0.3)
                cpu = CpuMeter.spent(before, meter.sample())
                loops = max(stats.loops, 1)
                # A judgment's latency: its one request, or its two (GET …/next and POST
                # …/judgment; raw: claim and submit).
                latencies = stats.first if variant.requests == 1 else stats.judgments
                row = {
                    "loops_per_s": stats.rate,
                    "app_ms": cpu.get("app", 0.0) * 1000 / loops,
                    "postgres_ms": cpu["postgres"] * 1000 / loops,
                    "client_ms": cpu["client"] * 1000 / loops,
                    "other_ms": cpu["other"] * 1000 / loops,
                    "p50_ms": latency_ms(latencies)["p50"] or 0.0,
                    "p99_ms": latency_ms(latencies)["p99"] or 0.0,
                    "samples": float(len(latencies)),
                    "load": os.getloadavg()[0],
                    "errors": float(stats.errors),
                }
                results[variant.name].append(row)
                print(
                    f"round {round_no + 1} {variant.name:>10}: {row['loops_per_s']:7.1f} loops/s"
                    f"  app {row['app_ms']:5.2f}  pg {row['postgres_ms']:5.2f}"
                    f"  client {row['client_ms']:5.2f}  other {row['other_ms']:6.2f} ms/loop"
                    f"  p50 {row['p50_ms']:5.1f}  p99 {row['p99_ms']:6.1f} ms"
                    f" (n {len(latencies)})  load {row['load']:.1f}  errors {stats.errors}",
                    flush=True,
                )
    print("\nmedians")
    raw = (
        statistics.median(r["loops_per_s"] for r in results.get("raw", []))
        if "raw" in results
        else None
    )
    for name, rows in results.items():
        rate = statistics.median(r["loops_per_s"] for r in rows)
        app_ms = statistics.median(r["app_ms"] for r in rows)
        pg_ms = statistics.median(r["postgres_ms"] for r in rows)
        p50 = statistics.median(r["p50_ms"] for r in rows)
        p99 = statistics.median(r["p99_ms"] for r in rows)
        of_raw = f"  of raw {rate / raw:.2f}" if raw else ""
        print(
            f"{name:>10}: {rate:7.1f} loops/s  app {app_ms:5.2f}  pg {pg_ms:5.2f} ms/loop"
            f"  p50 {p50:5.1f}  p99 {p99:6.1f} ms{of_raw}"
        )


if __name__ == "__main__":
    main()
