"""Measured data sets as experiments: fit on loopback, predict the container paths.

A data set made by ``uksim measure`` (``validation/measured/NAME/``) holds one folder per
command with a ``summary.csv`` (median and quartiles over runs per cell). This module
turns its redis-benchmark cells (:func:`load_measured`) and its nginx + ab cells
(:func:`load_measured_http`) into :class:`~sim.experiment.Experiment` objects whose
platforms are the harness's paths as the models know them:

=============  ==================  ================================================
path           platform model      what it adds to the host path
=============  ==================  ================================================
loopback       ``ubuntu_bare``     nothing: the host's own loopback
veth           ``container_veth``  a veth pair into a network namespace
bridge-nat     ``container``       veth, a Linux bridge and iptables DNAT (Docker)
=============  ==================  ================================================

Calibration fits the host's layer costs on the loopback cells only; the veth and
bridge-nat cells are then predicted out of sample, with the shared veth, bridge and NAT
stages at their priors. The HTTP cells are a table of metrics (req/s and latency
percentiles of one ab run), with and without keep-alive as two rows of variants of ab's
GET; their calibration builds on the Redis one (the host's layer costs stay as fitted
there) and fits only what HTTP adds, again on loopback alone. Runs with nginx's access log
shipped as syslog datagrams are rows of their own, never fitted: they check the models'
syslog path (``--log syslog``) on every path.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sim.composition import workload_tests
from sim.errors import ConfigError
from sim.experiment import Cell, Experiment, Point, Variant

PATH_PLATFORMS = {"loopback": "ubuntu_bare", "veth": "container_veth", "bridge-nat": "container"}
TRAIN_PATH = "loopback"


# the HTTP cells: ab's GET against the harness's nginx, a row per keep-alive setting and
# access log (off, as the harness runs nginx by default, or shipped as syslog datagrams:
# `uksim measure http --access-log syslog`); the calibration fits the rows without a log,
# on loopback, and the syslog rows are predicted on every path (the models' --log syslog)
HTTP_ROWS = {(False, "off"): "close", (True, "off"): "keep-alive",
             (False, "syslog"): "close, syslog", (True, "syslog"): "keep-alive, syslog"}
HTTP_TRAIN_ROWS = ("close", "keep-alive")
HTTP_METRICS = ("requests_per_s", "latency_p50_ms", "latency_p90_ms", "latency_p99_ms")
HTTP_FIT_METRICS = ("requests_per_s", "latency_p50_ms")
HTTP_FREE = ("nginx.request", "tcp.connection")  # what HTTP adds to the host's layers


def _summaries(root: Path) -> list[Path]:
    if not root.is_dir():
        raise ConfigError(str(root), "", "no such data set folder")
    if (root / "summary.csv").is_file():
        files = [root / "summary.csv"]
    else:
        files = sorted(root.glob("*/summary.csv"))
    if not files:
        raise ConfigError(str(root), "", "no summary.csv here or in its sub-folders; make one "
                          "with `uksim measure redis|http ... --out DIR`")
    return files


def _flag(value: str, f: Path, key: str) -> bool:
    v = value.strip().lower()
    if v in ("true", "1", "yes"):
        return True
    if v in ("false", "0", "no", ""):
        return False
    raise ConfigError(str(f), key, f"expected true or false, got {value!r}")


def _has_tool(root: Path, tool: str) -> bool:
    for f in _summaries(root):
        with f.open(newline="") as fh:
            if any(r.get("tool") == tool for r in csv.DictReader(fh)):
                return True
    return False


def has_redis(root: Path) -> bool:
    """Whether a data set holds redis-benchmark runs."""
    return _has_tool(root, "redis-benchmark")


def has_http(root: Path) -> bool:
    """Whether a data set holds ab runs."""
    return _has_tool(root, "ab")


def load_measured(root: Path, host: str = "python-kind-2core", workload: str = "redis-benchmark",
                  pipeline: int | None = None) -> Experiment:
    """The redis-benchmark cells (without AOF) of a measured data set."""
    files = _summaries(root)
    known = set(workload_tests(workload))
    values: dict[tuple[int, Cell], float] = {}
    spread: dict[tuple[int, Cell], tuple[float, float]] = {}
    for f in files:
        with f.open(newline="") as fh:
            for row in csv.DictReader(fh):
                if (row.get("tool") != "redis-benchmark" or row.get("metric") != "requests_per_s"
                        or row.get("aof", "").lower() in ("true", "1", "yes")):
                    continue
                platform = PATH_PLATFORMS.get(row.get("path", ""))
                test = row.get("test", "")
                if platform is None or test not in known:
                    continue
                try:
                    p = int(row["pipeline"])
                    cell: Cell = (test, platform, int(row["connections"]))
                    values[(p, cell)] = float(row["median"])
                    spread[(p, cell)] = (float(row["q1"]), float(row["q3"]))
                except (KeyError, ValueError) as exc:
                    raise ConfigError(str(f), "row", f"cannot read a cell: {exc}") from None
    pipelines = sorted({p for p, _ in values})
    if not pipelines:
        raise ConfigError(str(root), "", "no redis-benchmark runs without AOF on the paths "
                          f"{', '.join(PATH_PLATFORMS)}")
    chosen = pipeline if pipeline is not None else max(
        pipelines, key=lambda q: sum(1 for p, _ in values if p == q))
    if chosen not in pipelines:
        raise ConfigError(str(root), "pipeline", f"no runs with -P {chosen}; the data have "
                          f"{', '.join(map(str, pipelines))}")
    cells = {c: v for (p, c), v in values.items() if p == chosen}
    if not any(c[1] == PATH_PLATFORMS[TRAIN_PATH] for c in cells):
        raise ConfigError(str(root), "path", "no loopback runs to fit the host from")
    platforms = tuple(p for p in PATH_PLATFORMS.values() if any(c[1] == p for c in cells))
    return Experiment(
        name=f"measured:{root.name}", description=f"redis-benchmark -P {chosen} measured on "
        f"{root.name}", source=str(root), reference=files[0], metric="requests_per_s",
        host=host, app="redis", workload=workload, platforms=platforms,
        tests=tuple(sorted({c[0] for c in cells})), clients=0, pipeline=chosen, aof=False,
        predict={"requests": 20000, "reps": 3, "max_reps": 12, "precision": 0.02},
        fit={"requests": 3000}, values=dict(sorted(cells.items())),
        train_platforms=(PATH_PLATFORMS[TRAIN_PATH],),
        labels={v: k for k, v in PATH_PLATFORMS.items()},
        spread={(c, "requests_per_s"): s for (p, c), s in spread.items() if p == chosen},
    )


def load_measured_http(root: Path, host: str = "python-kind-2core", app: str = "nginx",
                       workload: str = "ab", test: str = "GET") -> Experiment:
    """The nginx + ab cells of a measured data set: both keep-alive settings, every path
    and connection count, the metrics of :data:`HTTP_METRICS` (median and quartiles).

    Its calibration (``NAME-http``) builds on the data set's Redis one (``NAME``)."""
    files = _summaries(root)
    if test not in workload_tests(workload):
        raise ConfigError(workload, "tests", f"no test {test!r} in the {workload} model")
    points: dict[Point, float] = {}
    spread: dict[Point, tuple[float, float]] = {}
    pages: set[int] = set()
    for f in files:
        with f.open(newline="") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                if row.get("tool") != "ab":
                    continue
                if row.get("server") != app:
                    raise ConfigError(str(f), f"line {i}: server", f"ab ran against "
                                      f"{row.get('server')!r}; the model here is {app!r}")
                metric = row.get("metric")
                platform = PATH_PLATFORMS.get(row.get("path", ""))
                if metric not in HTTP_METRICS or platform is None:
                    continue
                keepalive = _flag(row.get("keepalive", ""), f, f"line {i}: keepalive")
                log = row.get("access_log") or "off"  # data sets before the column: off
                if (keepalive, log) not in HTTP_ROWS:
                    raise ConfigError(str(f), f"line {i}: access_log",
                                      f"unknown access log {log!r}; known: off, syslog")
                try:
                    cell: Cell = (HTTP_ROWS[(keepalive, log)], platform,
                                  int(row["connections"]))
                    pt = (cell, metric)
                    points[pt] = float(row["median"])
                    spread[pt] = (float(row["q1"]), float(row["q3"]))
                    pages.add(int(row["value_bytes"]))
                except (KeyError, ValueError, TypeError) as exc:
                    raise ConfigError(str(f), f"line {i}", f"cannot read an ab cell: {exc}"
                                      ) from None
                if not points[pt] > 0:
                    raise ConfigError(str(f), f"line {i}: median",
                                      f"{metric} must be positive, got {row['median']}")
    if not points:
        raise ConfigError(str(root), "", "no ab runs on the paths "
                          f"{', '.join(PATH_PLATFORMS)} (make them with `uksim measure http`)")
    if len(pages) > 1:
        raise ConfigError(str(root), "value_bytes", "runs with different page sizes "
                          f"({', '.join(map(str, sorted(pages)))} bytes): validate one at a "
                          "time")
    train = PATH_PLATFORMS[TRAIN_PATH]
    if not any(c[1] == train for c, _ in points):
        raise ConfigError(str(root), "path", "no loopback ab runs to fit nginx from")
    rows = tuple(r for r in HTTP_ROWS.values() if any(c[0] == r for c, _ in points))
    page = pages.pop()
    return Experiment(
        name=f"measured:{root.name}:http", description=f"ab against {app} (one worker, a "
        f"{page}-byte page) measured on {root.name}", source=str(root), page_bytes=page,
        reference=files[0], metric="requests_per_s", host=host, app=app, workload=workload,
        platforms=tuple(p for p in PATH_PLATFORMS.values() if any(c[1] == p for c, _ in points)),
        tests=rows, clients=0, pipeline=1, aof=False,
        predict={"requests": 6000, "reps": 3, "max_reps": 8, "precision": 0.02},
        fit={"requests": 3000}, points=dict(sorted(points.items(), key=_http_order)),
        train_platforms=(train,), train_tests=HTTP_TRAIN_ROWS,
        labels={v: k for k, v in PATH_PLATFORMS.items()},
        spread=spread, metrics=HTTP_METRICS, fit_metrics=HTTP_FIT_METRICS,
        variants={r: Variant(test, k, None if log == "off" else log)
                  for (k, log), r in HTTP_ROWS.items()},
        calibration=f"{root.name}-http", builds_on=root.name, free=HTTP_FREE,
    )


def _http_order(item: tuple[Point, float]) -> tuple[int, int, int, int]:
    """Rows, then paths (loopback first), then load, then metrics, as the tables read."""
    (row, platform, clients), metric = item[0]
    return (list(HTTP_ROWS.values()).index(row), list(PATH_PLATFORMS.values()).index(platform),
            clients, HTTP_METRICS.index(metric))
