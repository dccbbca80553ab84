"""What does shipping nginx's access log as syslog cost on this machine, and what does the
model say it costs?

Reads the four measurements in this folder, made one after the other with `uksim measure
http` (README: the commands): ab against nginx with and without keep-alive, each with the
access log off and with it shipped as a syslog datagram per request (`--access-log
syslog`), on loopback, veth and bridge-nat, `-c 1,10,50,100`, 5 runs. For every cell it
prints the measured medians of req/s with the log off and shipped, their ratio, and the
model's ratio for the same cell: `uksim predict --host python-kind-2core --calibration
python-kind-2core-http --app nginx --workload ab` with `--log none` and `--log syslog`
(the platform of each path as `sim.measured` maps it). The model was calibrated on the
data set's own runs of 2026-11-23, not on these.

Usage, from the repository root: ``.venv/bin/python
validation/measured/python-kind-2core/syslog-check/syslog_check.py > results.txt``
(no root: it reads the measurements and runs the model).
"""

from __future__ import annotations

import csv
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository's sim/

from sim.composition import Settings, compose
from sim.measured import PATH_PLATFORMS
from sim.parameters import current_parameters
from sim.predict import run_metrics
from sim.runner import RunOptions, run_point
from sim.scenario import expand_and_resolve

HERE = Path(__file__).resolve().parent
PARAMS = current_parameters("python-kind-2core-http")
PAGE_BYTES = 1450


def medians(folder: str, metric: str = "requests_per_s") -> dict[tuple[str, int], float]:
    with (HERE / folder / "summary.csv").open(newline="") as f:
        return {(r["path"], int(r["connections"])): float(r["median"])
                for r in csv.DictReader(f) if r["metric"] == metric}


def model_rps(path: str, clients: int, keepalive: bool, log: str) -> float:
    raw = compose("python-kind-2core", PATH_PLATFORMS[path], "nginx", "ab", "GET", PARAMS,
                  Settings(clients=clients, keepalive=keepalive, page_bytes=PAGE_BYTES,
                           requests=max(6000, 20 * clients), reps=3, max_reps=3, log=log))
    row = run_point(expand_and_resolve(raw, f"syslog-check {path}")[0], RunOptions(seed=1))
    return float(run_metrics(row)["requests_per_s"][0])


def main() -> None:
    print("nginx + ab, req/s: measured medians of 5 runs with the access log off and shipped "
          "as syslog, their ratio, and the model's ratio (--log syslog over --log none)")
    print()
    print(f"{'ab':10s} {'path':10s} {'-c':>4s} {'off':>9s} {'syslog':>9s} {'measured':>9s} "
          f"{'model':>7s}")
    ratios: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for mode, keepalive in (("keepalive", True), ("close", False)):
        off, shipped = medians(f"{mode}-off"), medians(f"{mode}-syslog")
        for path in PATH_PLATFORMS:
            for c in sorted(k[1] for k in off if k[0] == path):
                measured = shipped[(path, c)] / off[(path, c)]
                model = (model_rps(path, c, keepalive, "syslog")
                         / model_rps(path, c, keepalive, "none"))
                ratios.setdefault((mode, path), []).append((measured, model))
                print(f"{mode:10s} {path:10s} {c:4d} {off[(path, c)]:9.0f} "
                      f"{shipped[(path, c)]:9.0f} {measured:9.3f} {model:7.3f}")
    print()
    print("median ratio over -c 1, 10, 50, 100 (measured; model):")
    for (mode, path), pairs in ratios.items():
        meas = statistics.median(m for m, _ in pairs)
        mod = statistics.median(m for _, m in pairs)
        print(f"  {mode:10s} {path:10s} {meas:.3f}  {mod:.3f}")
    allm = [m for pairs in ratios.values() for m, _ in pairs]
    allp = [p for pairs in ratios.values() for _, p in pairs]
    print(f"  all 24 cells          {statistics.median(allm):.3f}  {statistics.median(allp):.3f}"
          f"  (measured ratios range {min(allm):.2f} to {max(allm):.2f})")


if __name__ == "__main__":
    main()
