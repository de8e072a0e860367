"""A benchmark's result: pickwise's figures beside the limits measured in the same run, printed
as rich tables and written to bench/results/<name>.json."""

import json
import math
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.table import Table

from bench.measure import load_average, machine

RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Wide enough for the detail tables when the output is a file or a pipe.
console = Console(width=None if Console().is_terminal else 190)

TargetKind = Literal["ratio_at_least", "ratio_at_most", "value_at_most"]


@dataclass(frozen=True)
class Target:
    kind: TargetKind
    value: float

    def describe(self, unit: str) -> str:
        match self.kind:
            case "ratio_at_least":
                return f"ratio ≥ {self.value:g}"
            case "ratio_at_most":
                return f"ratio ≤ {self.value:g}"
            case "value_at_most":
                return f"≤ {self.value:g} {unit}"

    def met(self, value: float | None, ratio: float | None) -> bool | None:
        match self.kind:
            case "ratio_at_least":
                return None if ratio is None else ratio >= self.value
            case "ratio_at_most":
                return None if ratio is None else ratio <= self.value
            case "value_at_most":
                return None if value is None else value <= self.value


@dataclass
class Comparison:
    """One line: pickwise's figure, the reference it is held against, and their ratio."""

    metric: str
    unit: str
    pickwise: float | None
    reference: float | None
    reference_name: str
    target: Target | None = None
    # How many samples pickwise's figure and the reference rest on, where that matters (a
    # percentile of a few hundred requests moves by milliseconds between runs).
    samples: tuple[int, int] | None = None
    ratio: float | None = field(init=False)
    target_text: str = field(init=False)
    target_met: bool | None = field(init=False)

    def __post_init__(self) -> None:
        usable = self.pickwise is not None and self.reference not in (None, 0)
        self.ratio = self.pickwise / self.reference if usable else None  # type: ignore[operator]
        self.target_text = self.target.describe(self.unit) if self.target else ""
        self.target_met = self.target.met(self.pickwise, self.ratio) if self.target else None


@dataclass
class DetailTable:
    title: str
    columns: list[str]
    rows: list[list[Any]]


@dataclass
class BenchResult:
    name: str
    size: str
    params: dict[str, Any]
    comparisons: list[Comparison] = field(default_factory=list)
    details: list[DetailTable] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    server: dict[str, Any] = field(default_factory=dict)
    raw: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    load_before: tuple[float, float, float] | None = field(default_factory=load_average)
    load_after: tuple[float, float, float] | None = None

    def compare(
        self,
        metric: str,
        unit: str,
        pickwise: float | None,
        reference: float | None,
        reference_name: str,
        target: Target | None = None,
        samples: tuple[int, int] | None = None,
    ) -> Comparison:
        line = Comparison(metric, unit, pickwise, reference, reference_name, target, samples)
        self.comparisons.append(line)
        return line


def fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if math.isnan(value):
            return "–"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_result(result: BenchResult) -> None:
    table = Table(title=f"{result.name} ({result.size})", title_justify="left")
    for column in ("metric", "pickwise", "limit / reference", "ratio", "target", "met"):
        table.add_column(column, justify="left" if column in ("metric", "target") else "right")
    for line in result.comparisons:
        met = {True: "[green]yes[/green]", False: "[red]NO[/red]", None: ""}[line.target_met]
        ours, theirs = ("", "") if line.samples is None else (f", n = {n:,}" for n in line.samples)
        table.add_row(
            line.metric,
            f"{fmt(line.pickwise)} {line.unit}{ours}",
            f"{fmt(line.reference)} {line.unit} ({line.reference_name}{theirs})",
            fmt(line.ratio),
            line.target_text,
            met,
        )
    console.print(table)
    for detail in result.details:
        extra = Table(title=detail.title, title_justify="left")
        for column in detail.columns:
            extra.add_column(column, justify="right")
        for row in detail.rows:
            extra.add_row(*(fmt(value) for value in row))
        console.print(extra)
    for note in result.notes:
        console.print(f"  • {note}")
    console.print(
        f"  {result.seconds:.0f} s; load average before {fmt_load(result.load_before)}, "
        f"after {fmt_load(result.load_after)}"
    )


def fmt_load(load: tuple[float, float, float] | None) -> str:
    return "–" if load is None else " ".join(f"{value:.2f}" for value in load)


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=RESULTS_DIR.parent,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.strip() or None


def write_result(result: BenchResult, directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        "benchmark": result.name,
        "size": result.size,
        "command": " ".join(["python", "-m", "bench", *sys.argv[1:]]),
        "git_commit": git_commit(),
        "machine": machine(),
        "server": result.server,
        "started_at": result.started_at,
        "seconds": round(result.seconds, 1),
        "load_average_before": result.load_before,
        "load_average_after": result.load_after,
        "params": result.params,
        "comparisons": [asdict(line) for line in result.comparisons],
        "details": [asdict(detail) for detail in result.details],
        "notes": result.notes,
        "raw": result.raw,
    }
    path = directory / f"{result.name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(payload, indent=2, default=_json_default) + "\n")
    temporary.replace(path)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")
