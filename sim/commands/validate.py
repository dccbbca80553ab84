"""``uksim validate``: every cell of a reference table, measured beside predicted.

``uksim validate jaworski2019 --table 1`` predicts each cell of Table 1 with the
calibrated parameters (95% interval), and again with the parameters fitted without the
cell's platform and without its test; prints the errors cell by cell and the mean
absolute percentage errors; ``--json OUT`` writes them, ``--plot OUT.png`` redraws the
study's figure with measured and predicted side by side. ``--table 2`` and ``3`` are the
HTTP tables (ab against Node's result and Flask's vote), ``4`` the start-up times, and
``all`` every table in turn (JSON: one report per table; plots: OUT-table1.png ...).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sim.commands.run import write_json_atomic
from sim.errors import UksimError
from sim.experiment import experiment_path, load_experiment
from sim.measured import load_measured
from sim.parameters import calibration_path
from sim.textable import fmt_number, render
from sim.validate import validate


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
                   help="calibration file (default models/calibration/STUDY.toml)")
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
    headers = ["test", "path", "-c", "measured (median)", "predicted (95% CI)", "error", ""]
    rows = []
    for c in rep["cells"]:
        ci = c["ci95"]
        rows.append([c["test"], c["path"], str(c["clients"]), fmt_number(c["measured"]),
                     f"{fmt_number(c['predicted'])} [{fmt_number(ci[0])}, {fmt_number(ci[1])}]",
                     _pct(c["error_pct"]), "fitted" if c["in_sample"] else "predicted"])
    print(render(headers, rows))
    print()
    print(f"{rep['experiment']}: {rep['data_points']} cells; {rep['free_parameters']} free "
          f"parameters fitted on {', '.join(rep['fitted_on'])} only")
    print(f"  mean absolute error, fitted (in sample):        {_pct(rep['mape_in_sample'])[1:]}")
    print(f"  mean absolute error, predicted (out of sample): "
          f"{_pct(rep['mape_out_of_sample'])[1:]}")
    for path, m in rep["mape_by_path"].items():
        print(f"    {path:12s} {_pct(m)[1:]}")


def main(args: argparse.Namespace) -> int:
    if args.study == "measured":
        if args.dataset is None:
            raise UksimError("validate measured needs the data set folder: uksim validate "
                             "measured validation/measured/NAME")
        exp = load_measured(args.dataset, host=args.host)
        cal = args.calibration or calibration_path(args.dataset.resolve().name)
        rep = validate(exp, cal, workers=args.workers, out_of_sample=False)
        print_measured_report(rep)
    else:
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
    if args.plot and args.study == "measured":
        from sim.plots.path_ratio import plot_path_ratio

        plot_path_ratio(rep, args.plot)
        print(f"wrote {args.plot}", file=sys.stderr)
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
