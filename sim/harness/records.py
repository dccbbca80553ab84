"""The tidy data a measurement leaves: ``results.csv``, ``summary.csv``, ``provenance.json``.

``results.csv`` has one row per run x test, in the columns of :data:`RESULT_FIELDS`
(the schema validation reads); a metric a tool does not report is left empty. Rows are
appended and flushed as each tool run finishes, so an interrupted measurement keeps
every finished run. ``summary.csv`` is rewritten after every run: one row per cell
(everything but the run index) and metric, with the median, min, max, quartiles and IQR
over runs. ``provenance.json`` records the machine, the tool versions, the exact command
lines (passwords replaced by ``<password>``) and the state of the measurement.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import json
import os
import platform
import statistics
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from sim import __version__
from sim.errors import UksimError
from sim.harness.cleanup import signals_held

#: Columns of results.csv, in order. Latencies in ms; kbytes_per_s in KiB/s;
#: other_cpu_pct is the share of all cores other work took during the run.
RESULT_FIELDS: tuple[str, ...] = (
    "path", "server", "tool", "test", "tool_label", "connections", "pipeline",
    "requests", "value_bytes", "aof", "keepalive", "run",
    "requests_per_s",
    "latency_mean_ms", "latency_min_ms", "latency_p50_ms", "latency_p66_ms",
    "latency_p75_ms", "latency_p80_ms", "latency_p90_ms", "latency_p95_ms",
    "latency_p98_ms", "latency_p99_ms", "latency_max_ms",
    "kbytes_per_s", "completed_requests", "failed_requests",
    "elapsed_s", "other_cpu_pct", "raw_file", "started_utc", "access_log", "log_datagrams",
)

#: Columns that identify a cell (a run's setting without its index).
CELL_FIELDS: tuple[str, ...] = (
    "path", "server", "tool", "test", "connections", "pipeline", "requests",
    "value_bytes", "aof", "keepalive", "access_log",
)

#: Metrics summarised over runs, when present.
SUMMARY_METRICS: tuple[str, ...] = (
    "requests_per_s", "latency_mean_ms", "latency_p50_ms", "latency_p90_ms",
    "latency_p99_ms", "latency_max_ms", "kbytes_per_s",
)

SUMMARY_FIELDS: tuple[str, ...] = (
    *CELL_FIELDS, "metric", "runs", "median", "min", "max", "q1", "q3", "iqr",
)


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


def quartiles(values: list[float]) -> tuple[float, float]:
    """First and third quartile (linear interpolation between order statistics)."""
    if len(values) == 1:
        return values[0], values[0]
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], q[2]


def summarise(rows: Iterable[Mapping[str, str]]) -> list[dict[str, str]]:
    """Summary rows (one per cell x metric) of results rows read back as strings."""
    cells: dict[tuple[str, ...], dict[str, list[float]]] = {}
    for row in rows:
        key = tuple(row.get(f, "") for f in CELL_FIELDS)
        metrics = cells.setdefault(key, {})
        for m in SUMMARY_METRICS:
            text = row.get(m, "")
            if text != "":
                metrics.setdefault(m, []).append(float(text))
    out: list[dict[str, str]] = []
    for key, metrics in cells.items():
        for m in SUMMARY_METRICS:
            values = sorted(metrics.get(m, []))
            if not values:
                continue
            q1, q3 = quartiles(values)
            rec = dict(zip(CELL_FIELDS, key, strict=True))
            rec.update(
                metric=m, runs=str(len(values)), median=_cell(statistics.median(values)),
                min=_cell(values[0]), max=_cell(values[-1]), q1=_cell(q1), q3=_cell(q3),
                iqr=_cell(q3 - q1),
            )
            out.append(rec)
    return out


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (empty if unknown)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def host_facts(work_dir: str | None = None) -> dict[str, Any]:
    """Kernel, CPU, cores, memory and the file system servers write to (AOF)."""
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    facts: dict[str, Any] = {
        "kernel": platform.release(),
        "machine": platform.machine(),
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)),
        "memory_bytes": mem_kb * 1024,
        "python": platform.python_version(),
        "loadavg_start": loadavg(),
    }
    with contextlib.suppress(OSError, StopIteration):
        facts["os_release"] = next(
            ln.split("=", 1)[1].strip('"')
            for ln in Path("/etc/os-release").read_text().splitlines()
            if ln.startswith("PRETTY_NAME=")
        )
    facts["server_dir_filesystem"] = filesystem_of(work_dir or "/tmp")
    return facts


def loadavg() -> str:
    """/proc/loadavg as text: other work on the machine disturbs measurements."""
    try:
        return Path("/proc/loadavg").read_text().strip()
    except OSError:
        return ""


def filesystem_of(path: str) -> str:
    """File system type holding ``path``, from /proc/mounts (longest mount prefix)."""
    best, kind = "", ""
    real = os.path.realpath(path)
    try:
        for line in Path("/proc/mounts").read_text().splitlines():
            parts = line.split()
            if len(parts) < 3:
                continue
            mount = parts[1]
            inside = real == mount or real.startswith(mount.rstrip("/") + "/")
            if inside and len(mount) >= len(best):
                best, kind = mount, parts[2]
    except OSError:
        pass
    return kind


class ResultWriter:
    """The output directory of one measurement, written as runs finish."""

    def __init__(self, out_dir: Path, provenance: dict[str, Any]) -> None:
        self.out_dir = out_dir
        self.raw_dir = out_dir / "raw"
        self.results_path = out_dir / "results.csv"
        self.summary_path = out_dir / "summary.csv"
        self.provenance_path = out_dir / "provenance.json"
        if self.results_path.exists():
            raise UksimError(f"{self.results_path} already exists; choose a new --out directory")
        self.raw_dir.mkdir(parents=True, exist_ok=True)
        with self.results_path.open("w", newline="") as f:
            csv.writer(f).writerow(RESULT_FIELDS)
        self.rows: list[dict[str, str]] = []
        self.provenance: dict[str, Any] = {
            "uksim_version": __version__,
            "status": "running",
            "started_utc": utc_now(),
            "finished_utc": None,
            **provenance,
            "commands": [],
        }
        self.write_provenance()

    def raw_file(self, name: str) -> Path:
        """Path for a tool's raw output file ``name`` (kept verbatim)."""
        return self.raw_dir / name

    def add_rows(self, rows: Iterable[Mapping[str, Any]]) -> None:
        """Append rows to results.csv (flushed and fsynced) and refresh summary.csv."""
        new = [{f: _cell(r.get(f)) for f in RESULT_FIELDS} for r in rows]
        unknown = {k for r in rows for k in r} - set(RESULT_FIELDS)
        if unknown:
            raise ValueError(f"result fields not in the schema: {sorted(unknown)}")
        with signals_held(), self.results_path.open("a", newline="") as f:
            # Held signals: an interrupt never leaves half a row; it lands right after.
            w = csv.DictWriter(f, RESULT_FIELDS)
            w.writerows(new)
            f.flush()
            os.fsync(f.fileno())
            self.rows.extend(new)
            self.write_summary()

    def write_summary(self) -> None:
        """Rewrite summary.csv from every row so far."""
        import io

        buf = io.StringIO()
        w = csv.DictWriter(buf, SUMMARY_FIELDS, lineterminator="\n")
        w.writeheader()
        w.writerows(summarise(self.rows))
        _atomic_write(self.summary_path, buf.getvalue())

    def add_command(self, record: dict[str, Any]) -> None:
        """Record one executed command line (already redacted) in provenance.json."""
        self.provenance["commands"].append(record)
        self.write_provenance()

    def set(self, key: str, value: Any) -> None:
        """Set a top-level provenance entry and rewrite the file."""
        self.provenance[key] = value
        self.write_provenance()

    def finish(self, status: str) -> None:
        """Mark the measurement complete, interrupted or failed."""
        self.provenance["status"] = status
        self.provenance["finished_utc"] = utc_now()
        self.provenance["loadavg_end"] = loadavg()
        self.write_provenance()

    def write_provenance(self) -> None:
        _atomic_write(self.provenance_path, json.dumps(self.provenance, indent=2) + "\n")
