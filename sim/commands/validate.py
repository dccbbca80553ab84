"""``uksim validate``: every cell of a reference table, measured beside predicted.

``uksim validate jaworski2019 --table 1`` predicts each cell of Table 1 with the
calibrated parameters (95% interval), and again with the parameters fitted without the
cell's platform and without its test; prints the errors cell by cell and the mean
absolute percentage errors; ``--json OUT`` writes them, ``--plot OUT.png`` redraws the
study's figure with measured and predicted side by side. ``--table 2`` and ``3`` are the
HTTP tables (ab against Node's result and Flask's vote), ``4`` the start-up times, and
``all`` every table in turn (JSON: one report per table; plots: OUT-table1.png ...).
``uksim validate measured DIR`` does the same for a data set made by ``uksim measure``:
its redis-benchmark cells and its nginx + ab cells, each fitted on loopback and predicted
on veth and bridge-nat (``--only redis|http`` for one part; plots OUT-redis.png and
OUT-http.png when there are both).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.commands.run import write_json_atomic
from sim.errors import UksimError
from sim.experiment import Experiment, experiment_path, load_experiment
from sim.measured import has_http, has_redis, load_measured, load_measured_http
from sim.parameters import calibration_path
from sim.textable import fmt_number, render
from sim.validate import validate

METRIC_NAMES = {"requests_per_s": "req/s", "kbytes_per_s": "KB/s", "latency_p50_ms": "p50 ms",
                "latency_p90_ms": "p90 ms", "latency_p99_ms": "p99 ms",
                "latency_p100_ms": "max ms"}
MEASURED_PARTS = {"redis": "redis-benchmark", "http": "nginx + ab"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="compare predictions with a reference table",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("study", nargs="?", default="jaworski2019",
                   help="study (default jaworski2019), or `measured` for a measured data set")
    p.add_argument("dataset", nargs="?", type=Path, default=None, metavar="DIR",
                   help="with `measured`: the data set made by `uksim measure`")
    p.add_argument("--host", default="python-kind-2core",
                   help="with `measured`: host model of that machine")
    p.add_argument("--table", default="1", choices=["1", "2", "3", "4", "all"],
                   help="table (default 1), or all")
    p.add_argument("--json", dest="json_out", type=Path, default=None, metavar="OUT")
    p.add_argument("--plot", type=Path, default=None, metavar="OUT.png")
    p.add_argument("--in-sample-only", action="store_true",
                   help="skip the out-of-sample predictions (faster)")
    p.add_argument("--calibration", type=Path, default=None,
                   help="calibration file (default models/calibration/STUDY.toml; with "
                   "`measured`: the Redis part's, default NAME.toml; the HTTP part reads "
                   "NAME-http.toml)")
    p.add_argument("--only", choices=list(MEASURED_PARTS), default=None,
                   help="with `measured`: only the redis-benchmark or the nginx + ab cells")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.set_defaults(handler=main)


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x:+.1f}%"


def print_report(rep: dict[str, Any]) -> None:
    cells = rep["cells"]
    oos = "error_pct_leave_one_platform_out" in cells[0]
    headers = ["test", "platform", "measured", "predicted (95% CI)", "error"]
    if oos:
        headers += ["leave platform out", "leave test out"]
    rows = []
    for c in cells:
        ci = c["ci95"]
        pred = f"{fmt_number(c['predicted'])} [{fmt_number(ci[0])}, {fmt_number(ci[1])}]"
        r = [c["test"], c["platform"], fmt_number(c["measured"]), pred, _pct(c["error_pct"])]
        if oos:
            r += [_pct(c.get("error_pct_leave_one_platform_out")),
                  _pct(c.get("error_pct_leave_one_test_out"))]
        if c.get("unreliable"):
            r[-1] += "  (unreliable column)"
        rows.append(r)
    print(render(headers, rows))
    print()
    print(f"{rep['experiment']}: {rep['data_points']} cells, {rep['free_parameters']} free "
          f"parameters (calibration {rep.get('calibration', 'fitted in the report')})")
    print(f"  mean absolute error in sample:            {_pct(rep['mape_in_sample'])[1:]}")
    if oos:
        print(f"  mean absolute error, leave one platform out: "
              f"{_pct(rep['mape_leave_one_platform_out'])[1:]}")
        print(f"  mean absolute error, leave one test out:     "
              f"{_pct(rep['mape_leave_one_test_out'])[1:]}")
        for p, s in rep["per_platform"].items():
            prior = s["layers_at_prior_when_left_out"]
            note = (f" (left out, these layers fall back to priors: {', '.join(prior)})"
                    if prior else "")
            print(f"    {p:12s} in sample {_pct(s['mape_in_sample'])[1:]:>6s}, left out "
                  f"{_pct(s['mape_leave_one_platform_out'])[1:]:>6s}{note}")


def print_measured_report(rep: dict[str, Any]) -> None:
    http = "mape_by_path_and_metric" in rep
    headers = ["test", "path", "-c", "measured (median)", "predicted (95% CI)", "error", ""]
    if http:
        headers = ["ab", "path", "-c", "metric", "measured (median [IQR])",
                   "predicted (95% CI)", "error", ""]
    rows = []
    for c in rep["cells"]:
        ci = c["ci95"]
        pred = f"{fmt_number(c['predicted'])} [{fmt_number(ci[0])}, {fmt_number(ci[1])}]"
        where = "fitted" if c.get("fitted") or (c["in_sample"] and not http) else (
            "predicted" if not c["in_sample"] else "not fitted")
        if http:
            meas = (f"{fmt_number(c['measured'])} [{fmt_number(c['measured_q1'])}, "
                    f"{fmt_number(c['measured_q3'])}]" if "measured_q1" in c
                    else fmt_number(c["measured"]))
            rows.append([c["run"], c["path"], str(c["clients"]), METRIC_NAMES[c["test"]], meas,
                         pred, _pct(c["error_pct"]), where])
        else:
            rows.append([c["test"], c["path"], str(c["clients"]), fmt_number(c["measured"]),
                         pred, _pct(c["error_pct"]), where])
    print(render(headers, rows))
    print()
    what = (f"{rep['points_measured']} points ({rep['points_fitted']} fitted: "
            f"{', '.join(METRIC_NAMES[m] for m in rep['headline_metrics'])})" if http
            else f"{rep['data_points']} cells")
    print(f"{rep['experiment']}: {what}; {rep['free_parameters']} free "
          f"parameters fitted on {', '.join(rep['fitted_on'])} only")
    print(f"  mean absolute error, fitted (in sample):        {_pct(rep['mape_in_sample'])[1:]}")
    print(f"  mean absolute error, predicted (out of sample): "
          f"{_pct(rep['mape_out_of_sample'])[1:]}")
    if not http:
        for path, m in rep["mape_by_path"].items():
            print(f"    {path:12s} {_pct(m)[1:]}")
        return
    paths = list(rep["mape_by_path"])
    table = [["fitted metrics, all rows"] + [_pct(rep["mape_by_path"][p])[1:] for p in paths]]
    runs = list(next(iter(rep["mape_by_path_and_run"].values())))
    table += [[f"fitted metrics, {r}"] + [_pct(rep["mape_by_path_and_run"][p][r])[1:]
                                          for p in paths] for r in runs]
    metrics = list(next(iter(rep["mape_by_path_and_metric"].values())))
    table += [[METRIC_NAMES[m] + ("" if m in rep["headline_metrics"] else " (never fitted)")]
              + [_pct(rep["mape_by_path_and_metric"][p][m])[1:] for p in paths]
              for m in metrics]
    print()
    heads = [f"{p} ({'fitted' if p in rep['fitted_on'] else 'predicted'})" for p in paths]
    print(render(["mean absolute error", *heads], table))



def _measured(args: argparse.Namespace) -> dict[str, Any]:
    """Each part of a measured data set, validated against its own calibration."""
    root: Path = args.dataset
    name = root.resolve().name
    parts = [args.only] if args.only else [
        k for k, has in (("redis", has_redis), ("http", has_http)) if has(root)]
    if not parts:
        raise UksimError(f"{root}: no redis-benchmark or ab runs to validate")
    reports: dict[str, dict[str, Any]] = {}
    for part in parts:
        if len(parts) > 1:
            print(f"\n=== {name}: {MEASURED_PARTS[part]} ===")
        exp: Experiment
        if part == "redis":
            exp = load_measured(root, host=args.host)
            cal = args.calibration or calibration_path(name)
        else:
            exp = load_measured_http(root, host=args.host)
            cal = calibration_path(exp.calibration)
            if not cal.is_file():
                raise UksimError(f"no calibration at {cal}: run `uksim calibrate --measured "
                                 f"{root} --http` first (or --only redis)")
        reports[part] = rep = validate(exp, cal, workers=args.workers, out_of_sample=False)
        print_measured_report(rep)
        if args.plot:
            out = (args.plot if len(parts) == 1 else
                   args.plot.with_name(f"{args.plot.stem}-{part}{args.plot.suffix}"))
            if part == "redis":
                from sim.plots.path_ratio import plot_path_ratio

                plot_path_ratio(rep, out)
            else:
                from sim.plots.measured_http import plot_measured_http

                plot_measured_http(rep, out)
            print(f"wrote {out}", file=sys.stderr)
    return {"study": "measured", "dataset": name, "parts": reports,
            "wall_seconds": round(sum(r["wall_seconds"] for r in reports.values()), 2)}


def main(args: argparse.Namespace) -> int:
    if args.study == "measured":
        if args.dataset is None:
            raise UksimError("validate measured needs the data set folder: uksim validate "
                             "measured validation/measured/NAME")
        rep = _measured(args)
    else:
        if args.only:
            raise UksimError("--only goes with `validate measured DIR`")
        tables = ["1", "2", "3", "4"] if args.table == "all" else [args.table]
        reports: dict[str, dict[str, Any]] = {}
        for table in tables:
            if len(tables) > 1:
                print(f"\n=== {args.study} table {table} ===")
            reports[table] = rep = _study_table(args, table)
            if args.plot:
                out = (args.plot if len(tables) == 1 else
                       args.plot.with_name(f"{args.plot.stem}-table{table}{args.plot.suffix}"))
                _plot(rep, table, out)
        if len(tables) > 1:
            rep = {"study": args.study, "tables": reports,
                   "wall_seconds": round(sum(r["wall_seconds"] for r in reports.values()), 2)}
            _summary(reports)
    if args.json_out:
        write_json_atomic(args.json_out, rep)
        print(f"wrote {args.json_out}", file=sys.stderr)
    print(f"({rep['wall_seconds']:.1f} s)", file=sys.stderr)
    return 0


def _study_table(args: argparse.Namespace, table: str) -> dict[str, Any]:
    if table == "4":
        if args.study != "jaworski2019":
            raise UksimError(f"no start-up table for {args.study}")
        from sim.startup import startup_report

        rep = startup_report()
        print_report(rep)
        return rep
    path = experiment_path(args.study, table)
    if not path.is_file():
        raise UksimError(f"no experiment {args.study} table {table} ({path} is missing)")
    exp = load_experiment(path)
    cal = args.calibration or calibration_path(exp.calibration or args.study)
    rep = validate(exp, cal, workers=args.workers, out_of_sample=not args.in_sample_only)
    print_report(rep)
    return rep


def _plot(rep: dict[str, Any], table: str, out: Path) -> None:
    if table == "4":
        from sim.plots.startup import plot_startup

        plot_startup(rep, out)
    elif "mape_by_metric" in rep:
        from sim.plots.http_bars import plot_http

        plot_http(rep, out)
    else:
        from sim.plots.normalised_bars import plot_normalised

        plot_normalised(rep, out)
    print(f"wrote {out}", file=sys.stderr)


def _summary(reports: dict[str, dict[str, Any]]) -> None:
    print("\n=== summary: mean absolute errors ===")
    rows = [[t, r["experiment"], str(r["data_points"]), str(r["free_parameters"]),
             _pct(r["mape_in_sample"])[1:], _pct(r.get("mape_leave_one_platform_out"))[1:],
             _pct(r.get("mape_leave_one_test_out"))[1:]] for t, r in reports.items()]
    print(render(["table", "experiment", "points", "free", "in sample", "leave platform out",
                  "leave test out"], rows))
