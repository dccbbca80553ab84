"""Measured data sets as experiments: fit on loopback, predict the container paths.

A data set made by ``uksim measure`` (``validation/measured/NAME/``) holds one folder per
command with a ``summary.csv`` (median and quartiles over runs per cell). This module
turns its redis-benchmark cells into an :class:`~sim.experiment.Experiment` whose
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
stages at their priors.
"""

from __future__ import annotations

import csv
from pathlib import Path

from sim.composition import workload_tests
from sim.errors import ConfigError
from sim.experiment import Cell, Experiment

PATH_PLATFORMS = {"loopback": "ubuntu_bare", "veth": "container_veth", "bridge-nat": "container"}
TRAIN_PATH = "loopback"


def _summaries(root: Path) -> list[Path]:
    if (root / "summary.csv").is_file():
        return [root / "summary.csv"]
    return sorted(root.glob("*/summary.csv"))


def load_measured(root: Path, host: str = "python-kind-2core", workload: str = "redis-benchmark",
                  pipeline: int | None = None) -> Experiment:
    """The redis-benchmark cells (without AOF) of a measured data set."""
    if not root.is_dir():
        raise ConfigError(str(root), "", "no such data set folder")
    files = _summaries(root)
    if not files:
        raise ConfigError(str(root), "", "no summary.csv here or in its sub-folders; make one "
                          "with `uksim measure redis ... --out DIR`")
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
        spread={c: s for (p, c), s in spread.items() if p == chosen},
    )
