"""``uksim calibrate``: fit the free layer parameters to a study's table.

``uksim calibrate jaworski2019 --table 1`` fits the parameters marked ``free`` in
``models/parameters.toml`` to Table 1 by least squares on the simulator's own predictions,
then refits with each platform and each test left out (for the out-of-sample report), and
writes everything to ``models/calibration/jaworski2019.toml``, which the models then
read. ``uksim calibrate --measured DIR`` fits a host measured with ``uksim measure`` from
its loopback runs alone and writes ``models/calibration/NAME.toml`` (NAME: DIR's name);
``--http`` then fits what its nginx + ab runs add (nginx's per-request cost, a TCP
connection's) on top of that, again from loopback alone (``NAME-http.toml``). The
in-sample fit starts from the priors and from ``--starts``-1 further points drawn around
them with a fixed seed, and keeps the best, so a refit gives the same numbers. It takes
minutes (thousands of short simulations; Table 1, whose write rows need long runs, about
half an hour to 40 minutes on two cores); progress is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

from sim.commands.argtypes import positive_int
from sim.errors import UksimError
from sim.experiment import Experiment, experiment_path, load_experiment
from sim.measured import load_measured, load_measured_http
from sim.parameters import ParameterSet, calibration_path, current_parameters, load_parameters

DEFAULT_STARTS = 8  # the fit's local minima differ by a few percent of rms log error


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="fit the free layer parameters to a measured table",
                       description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("study", nargs="?", default="jaworski2019", help="study (default jaworski2019)")
    p.add_argument("--table", default="1", help="table to fit (default 1)")
    p.add_argument("--no-folds", action="store_true",
                   help="skip the leave-one-platform-out and leave-one-test-out refits")
    p.add_argument("--workers", type=int, default=0, help="processes (0: one per core)")
    p.add_argument("--starts", type=positive_int, default=DEFAULT_STARTS, metavar="N",
                   help="starting points of the in-sample fit: the priors and N-1 drawn "
                   f"around them, the best kept (default {DEFAULT_STARTS})")
    p.add_argument("--measured", type=Path, default=None, metavar="DIR",
                   help="fit this host from the loopback runs of a measured data set")
    p.add_argument("--speed-only", action="store_true",
                   help="with --measured: keep the reference study's calibrated layer costs "
                   "and fit one speed factor for this host (writes NAME-speed.toml)")
    p.add_argument("--http", action="store_true",
                   help="with --measured: fit the nginx + ab runs on top of the data set's "
                   "calibration (writes NAME-http.toml)")
    p.add_argument("--host", default="python-kind-2core",
                   help="host model of the measured machine (default python-kind-2core)")
    p.add_argument("--out", type=Path, default=None,
                   help="where to write (default models/calibration/STUDY.toml)")
    p.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    from sim.calibration import calibrate, write_calibration  # scipy.optimize: slow to import

    builds_on = None
    base = load_parameters()
    if (args.speed_only or args.http) and args.measured is None:
        raise UksimError(f"{'--speed-only' if args.speed_only else '--http'} goes with "
                         "--measured DIR")
    if args.speed_only and args.http:
        raise UksimError("--speed-only and --http: choose one")
    if args.http:
        exp = load_measured_http(args.measured, host=args.host)
        name = exp.calibration
        folds = False  # the container paths are the out-of-sample check
        if not calibration_path(exp.builds_on).is_file():
            raise UksimError(f"--http builds on the data set's own calibration, and "
                             f"{calibration_path(exp.builds_on)} is missing: run `uksim "
                             f"calibrate --measured {args.measured}` first")
        builds_on, base = _building_on(exp)
    elif args.measured is not None:
        exp = load_measured(args.measured, host=args.host)
        name = args.measured.resolve().name
        folds = False  # the container paths are the out-of-sample check
        if args.speed_only:
            # the reference host's fitted costs, and one free parameter: this host's speed
            builds_on = args.study
            ref = current_parameters(args.study)
            base = ParameterSet({n: replace(p, free=(n == "host.speed"))
                                 for n, p in ref.params.items()}, ref.origin)
            name = f"{name}-speed"
    else:
        path = experiment_path(args.study, args.table)
        if not path.is_file():
            raise UksimError(f"no experiment {args.study} table {args.table} ({path} is missing)")
        exp = load_experiment(path)
        name = exp.calibration or args.study
        folds = not args.no_folds
        if exp.builds_on or exp.free:
            builds_on, base = _building_on(exp)
    t0 = time.perf_counter()

    def progress(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:6.0f} s] {msg}", file=sys.stderr, flush=True)

    cal = calibrate(exp, base, workers=args.workers, folds=folds, progress=progress,
                    starts=args.starts)
    out = args.out or calibration_path(name)
    points = len(exp.fit_points())
    write_calibration(cal, base, out, points, builds_on=builds_on)
    f = cal.in_sample
    print(f"fitted {len(f.free)} free parameters to {points} data points of {exp.name}: "
          f"rms log error {f.rms_log_residual:.3f}")
    for name in f.free:
        p = base.params[name]
        print(f"  {name:26s} {f.values[name]:14.4g} ± {f.stderr[name]:<10.3g} {p.unit:8s} "
              f"(prior {p.value:g})")
    print(f"wrote {out}")
    return 0


def _building_on(exp: Experiment) -> tuple[str | None, ParameterSet]:
    """An experiment that builds on another calibration (HTTP on the Redis tables' layer
    costs) fits only its own parameters, starting from that calibration's values."""
    ref = current_parameters(exp.builds_on) if exp.builds_on else load_parameters()
    chosen = set(exp.free) or set(ref.free_names)
    return exp.builds_on or None, ParameterSet(
        {n: replace(p, free=(n in chosen)) for n, p in ref.params.items()}, ref.origin)
