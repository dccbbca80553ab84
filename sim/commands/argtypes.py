"""Argument types shared by the commands: counts and rates that argparse checks, with
one-line errors, and the arguments several commands take alike."""

from __future__ import annotations

import argparse
import math


def positive_int(text: str) -> int:
    """A whole number of at least 1 (connections, requests, a pipeline)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def at_least_two(text: str) -> int:
    """Replications: an interval needs two."""
    v = positive_int(text)
    if v < 2:
        raise argparse.ArgumentTypeError("must be at least 2 (an interval needs two)")
    return v


def nonneg_int(text: str) -> int:
    """A whole number of at least 0 (0: the default, e.g. one worker per core)."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError("must be >= 0")
    return v


def positive_float(text: str) -> float:
    """A finite number above 0 (a rate in requests per second, a timeout in seconds)."""
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text}")
    return v


def pin(text: str) -> tuple[str, list[int]]:
    """``ROLE=CORES``: a role of the host's placement (client, server, vhost, all) and the
    cores it runs on, comma-separated core indices (``server=1``, ``all=0,1``)."""
    role, sep, cores = text.partition("=")
    if not sep or not role.strip():
        raise argparse.ArgumentTypeError(f"expected ROLE=CORES (e.g. server=1), got {text!r}")
    try:
        indices = [int(c) for c in cores.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated core indices after {role}=, got {cores!r}") from None
    if any(i < 0 for i in indices) or len(set(indices)) != len(indices):
        raise argparse.ArgumentTypeError(f"core indices must be distinct and >= 0: {cores}")
    return role.strip(), indices


def add_log_argument(parser: argparse.ArgumentParser) -> None:
    """``--log DEST``: where the app's log line goes (``Settings.log``)."""
    parser.add_argument(
        "--log", default=None, metavar="DEST",
        help="where the app's log line goes: platform (the platform's own path: a pipe on "
        "Linux and NetBSD, the console on the unikernels; vote's default), syslog (an RFC "
        "5424 datagram to a collector on the host), or none (nginx's default, as the "
        "harness runs it)")
