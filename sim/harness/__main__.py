"""``python -m sim.harness measure ...``: the harness without the rest of the CLI.

The same ``measure`` command as ``uksim measure``, for a machine that measures but does
not simulate: it imports nothing of the engine. Errors end as in ``uksim``: one line on
standard error and exit code 2; an interrupt ends with code 130 after cleanup.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sim import __version__
from sim.cli import dispatch  # sim.cli imports the engine only when it registers commands
from sim.harness import cli


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (``measure ...``) and run it."""
    parser = argparse.ArgumentParser(prog="python -m sim.harness",
                                     description="uksim's measurement harness alone.")
    parser.add_argument("--version", action="version", version=f"uksim {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    cli.register(sub)
    return dispatch(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
