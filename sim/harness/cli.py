"""``uksim measure``: placeholder until the harness lands (issue 5)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("measure", help="measure real servers and load tools (harness)")
    p.set_defaults(handler=lambda args: p.error("the measurement harness is not built yet"))
