"""The ``uksim`` command line: one sub-command per use.

``run`` executes scenarios, ``measure`` runs real servers and load tools (the harness),
and later ``calibrate``, ``validate`` and ``explain``. Every user mistake ends in one line
on standard error and exit code 2; an interrupt (Ctrl-C) ends with code 130 after the
finished work has been written.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from sim import __version__
from sim.errors import UksimError

Register = Callable[[argparse._SubParsersAction], None]


def _registrations() -> list[Register]:
    from sim.commands import calibrate as calibrate_cmd
    from sim.commands import explain as explain_cmd
    from sim.commands import predict as predict_cmd
    from sim.commands import run as run_cmd
    from sim.commands import validate as validate_cmd
    from sim.harness import cli as measure_cmd

    return [run_cmd.register, calibrate_cmd.register, validate_cmd.register,
            explain_cmd.register, predict_cmd.register, measure_cmd.register]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="uksim",
        description="Simulate network I/O paths (bare metal, KVM, unikernels, containers).",
    )
    parser.add_argument("--version", action="version", version=f"uksim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for register in _registrations():
        register(sub)
    return parser




def main(argv: Sequence[str] | None = None) -> int:
    return dispatch(build_parser().parse_args(argv))


def dispatch(args: argparse.Namespace) -> int:
    """Run a parsed command: a user's mistake is one line and exit 2; Ctrl-C exits 130."""
    try:
        code = args.handler(args)
    except UksimError as exc:
        print(f"uksim: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("uksim: interrupted; finished work was kept", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader went away (e.g. `| head`): nothing left to say
        sys.stderr.close()
        return 0
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
