"""Small helpers shared by the benchmarks: timing with peak memory, tables, JSON results.

Memory is sampled in a background thread as the sum over this process and
every process it started: with a local ``ray.init`` that is the raylet, the
GCS and every Ray worker (other clusters on the machine and the workers of a
remote cluster are not counted). Two figures are kept: RSS (counts pages
shared between processes, such as the Ray object store, once per process
that maps them, so it overstates) and PSS (shared pages split between their
users, the honest total). Peaks are sampled, so a spike shorter than the
interval can be missed. CPU seconds (user + system, same process tree) are
recorded too: on a busy machine they vary less than wall time.
"""

from __future__ import annotations

import json
import os
import platform
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

GiB = 1024**3
RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _processes() -> list[psutil.Process]:
    me = psutil.Process()
    try:
        return [me, *me.children(recursive=True)]
    except psutil.Error:
        return [me]


def _sample() -> tuple[int, int, dict[tuple[int, float], float]]:
    """(RSS, PSS, CPU seconds per process) over this process tree."""
    rss = pss = 0
    cpu: dict[tuple[int, float], float] = {}
    for p in _processes():
        try:
            info, t = p.memory_full_info(), p.cpu_times()
            cpu[(p.pid, p.create_time())] = t.user + t.system
        except (psutil.Error, OSError):
            continue  # the process ended between listing and reading
        rss += info.rss
        pss += getattr(info, "pss", info.rss)
    return rss, pss, cpu


def memory_now() -> tuple[int, int]:
    """(RSS, PSS) in bytes summed over this process tree."""
    rss, pss, _ = _sample()
    return rss, pss


@dataclass
class Measurement:
    """Wall time, CPU time and memory of one timed call.

    ``cpu_s`` sums user + system time over the process tree, keeping the last
    sampled value of processes that end meanwhile (Ray workers and actors
    come and go), so only a process born and gone between two samples is missed.
    """

    wall_s: float
    peak_rss: int
    peak_pss: int
    start_rss: int
    start_pss: int
    cpu_s: float
    result: Any = None


class _Sampler(threading.Thread):
    def __init__(self, interval_s: float) -> None:
        super().__init__(daemon=True)
        self.interval_s, self.stop_event = interval_s, threading.Event()
        self.start_rss, self.start_pss, self.cpu_start = _sample()
        self.peak_rss, self.peak_pss, self.cpu_last = (
            self.start_rss,
            self.start_pss,
            dict(self.cpu_start),
        )

    def sample(self) -> None:
        rss, pss, cpu = _sample()
        self.peak_rss, self.peak_pss = max(self.peak_rss, rss), max(self.peak_pss, pss)
        self.cpu_last.update(cpu)

    def run(self) -> None:
        while not self.stop_event.wait(self.interval_s):
            self.sample()

    def cpu_s(self) -> float:
        return sum(v - self.cpu_start.get(k, 0.0) for k, v in self.cpu_last.items())


def measure(fn: Callable[[], Any], interval_s: float = 0.25) -> Measurement:
    """Run ``fn()`` once, timing it and sampling peak memory and CPU time meanwhile."""
    sampler = _Sampler(interval_s)
    sampler.start()
    t0 = time.perf_counter()
    try:
        result = fn()
    finally:
        wall = time.perf_counter() - t0
        sampler.stop_event.set()
        sampler.join()
    sampler.sample()
    return Measurement(
        wall,
        sampler.peak_rss,
        sampler.peak_pss,
        sampler.start_rss,
        sampler.start_pss,
        sampler.cpu_s(),
        result,
    )


def print_table(title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Print rows as a rich table; floats get 3 significant decimals."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for i, c in enumerate(columns):
        table.add_column(c, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*[_fmt(v) for v in row])
    Console(width=160).print(table)  # no wrapping when piped to a file


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3f}" if abs(v) < 100 else f"{v:,.0f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(psutil.virtual_memory().total / GiB, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def write_json(name: str, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus machine info) to ``benchmarks/results/<name>.json``."""
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(
        json.dumps({"machine": machine_info(), **payload}, indent=2, default=str) + "\n"
    )
    return path
