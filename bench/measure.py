"""Clocks, CPU time, peak memory and the machine, read from /proc (Linux) and the stdlib."""

import contextlib
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PROC = Path("/proc")


# --- the machine ------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    return {
        "cores": os.cpu_count(),
        "memory_gb": round(_meminfo_kb("MemTotal") / 1024 / 1024, 1),
        "cpu": _cpu_model(),
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def load_average() -> tuple[float, float, float] | None:
    try:
        return os.getloadavg()
    except OSError:
        return None


def _meminfo_kb(key: str) -> int:
    try:
        for line in (PROC / "meminfo").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_model() -> str:
    try:
        for line in (PROC / "cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# --- CPU time ---------------------------------------------------------------------------


def _stat_fields(pid: int) -> list[str] | None:
    try:
        raw = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name may contain spaces; the fields after it are space separated.
    return raw[raw.rindex(")") + 2 :].split()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in (PROC / str(pid) / "task").iterdir():
            text = (task / "children").read_text().split()
            found.extend(int(child) for child in text)
    except OSError:
        pass
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time of a process, its live descendants, and the children it has already reaped.

    Postgres' postmaster reaps its backends, and uvicorn its workers, so a closed connection
    or a restarted worker still counts (in the parent's cutime/cstime).
    """
    fields = _stat_fields(pid)
    if fields is None:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 of /proc/pid/stat (11-14 after the name).
    total = sum(int(value) for value in fields[11:15]) / _TICKS
    return total + sum(tree_cpu_seconds(child) for child in _children(pid))


def machine_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, over all cores."""
    try:
        line = (PROC / "stat").read_text().splitlines()[0]
    except OSError:
        return 0.0, 0.0
    values = [int(value) for value in line.split()[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)
    # guest time is already counted in user time
    total = sum(values[:8])
    return (total - idle) / _TICKS, total / _TICKS


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def postmaster_pid(url: str) -> int | None:
    """The server's postmaster, if it runs on this machine (parent of our backend)."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        # Read while the backend is alive: it exits when the connection closes.
        fields = _stat_fields(int(row[0])) if row else None
    return int(fields[1]) if fields else None


@dataclass(frozen=True)
class CpuSample:
    at: float
    client: float
    machine_busy: float
    machine_total: float
    processes: Mapping[str, float]


class CpuMeter:
    """CPU seconds spent by this process (the client), named process trees, and the machine.

    `other` is everything else the machine did meanwhile: other users' work on a shared box.
    """

    def __init__(self, trees: Mapping[str, int | None]) -> None:
        self.trees = {name: pid for name, pid in trees.items() if pid}

    def sample(self) -> CpuSample:
        busy, total = machine_cpu_seconds()
        return CpuSample(
            at=time.perf_counter(),
            client=self_cpu_seconds(),
            machine_busy=busy,
            machine_total=total,
            processes={name: tree_cpu_seconds(pid) for name, pid in self.trees.items()},
        )

    @staticmethod
    def spent(before: CpuSample, after: CpuSample) -> dict[str, float]:
        """CPU seconds per part between two samples, plus wall seconds and machine capacity."""
        parts = {"client": after.client - before.client}
        for name, value in after.processes.items():
            parts[name] = value - before.processes.get(name, 0.0)
        busy = after.machine_busy - before.machine_busy
        parts["other"] = max(busy - sum(parts.values()), 0.0)
        parts["idle"] = max(
            (after.machine_total - before.machine_total) - busy,
            0.0,
        )
        parts["wall"] = after.at - before.at
        return parts


# --- memory -----------------------------------------------------------------------------


def peak_rss_mb(pid: int) -> float | None:
    """VmHWM: the largest resident set the (live) process has had."""
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def reset_peak_rss(pid: int) -> bool:
    """Start VmHWM afresh (Linux ≥ 4.0, needs the right to write /proc/pid/clear_refs)."""
    try:
        (PROC / str(pid) / "clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_rss_mb: float
    returncode: int
    cpu_seconds: float
    output: str


def run_child(
    argv: Sequence[str], env: Mapping[str, str], *, timeout: float, log: Path
) -> ChildRun:
    """Run a command to the end; wall time, its exact peak RSS (from wait4), CPU time."""
    started = time.perf_counter()
    with log.open("wb") as sink:
        process = subprocess.Popen(list(argv), env=dict(env), stdout=sink, stderr=subprocess.STDOUT)
        deadline = started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.perf_counter() > deadline:
                process.kill()
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.02)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    output = log.read_text(errors="replace")
    # Linux reports ru_maxrss in kilobytes.
    return ChildRun(
        seconds=seconds,
        peak_rss_mb=usage.ru_maxrss / 1024,
        returncode=process.returncode,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        output=output,
    )


def stop_process(process: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """Stop a process we started (and its group, which it leads): SIGTERM, then SIGKILL."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
        return
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(5)


# --- latency ----------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float | None:
    """Nearest-rank percentile (share in 0..1); None without values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(int(-(-share * len(ordered) // 1)), 1)
    return ordered[min(rank, len(ordered)) - 1]


def latency_ms(values: Sequence[float]) -> dict[str, float | None]:
    """p50 / p99 / max of durations given in seconds, in milliseconds."""

    def ms(value: float | None) -> float | None:
        return None if value is None else value * 1000

    return {
        "p50": ms(percentile(values, 0.50)),
        "p99": ms(percentile(values, 0.99)),
        "max": ms(max(values) if values else None),
        "n": float(len(values)),
    }


def python_command() -> list[str]:
    return [sys.executable]


def pickwise_command() -> list[str]:
    """The installed `pickwise` entry point next to this interpreter."""
    candidate = Path(sys.executable).with_name("pickwise")
    if candidate.exists():
        return [str(candidate)]
    return [sys.executable, "-c", "from pickwise.cli.main import main; main()"]
