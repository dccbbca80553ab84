"""External programs the harness runs: lookup, Debian packages, bounded execution.

Every program is found on ``PATH`` (plus the sbin directories, where Debian puts nginx,
ip and iptables) and, when missing, reported with the Debian package that ships it.
Every subprocess runs with a timeout; :func:`run` raises :class:`sim.errors.ToolError`
with one line when a program fails or overruns.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from sim.errors import ToolError

#: Program name -> Debian package that installs it.
DEBIAN_PACKAGES: dict[str, str] = {
    "redis-server": "redis-server",
    "redis-benchmark": "redis-tools",
    "redis-cli": "redis-tools",
    "nginx": "nginx",
    "ab": "apache2-utils",
    "wrk": "wrk",
    "ip": "iproute2",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "sysctl": "procps",
}

_SBIN_DIRS = ("/usr/local/sbin", "/usr/sbin", "/sbin")

#: Default bound for short administrative commands (ip, iptables, version queries).
ADMIN_TIMEOUT_S = 20.0


def _search_path() -> str:
    path = os.environ.get("PATH", "")
    parts = [p for p in path.split(os.pathsep) if p]
    # Debian keeps nginx, ip and iptables in sbin, which a non-login root PATH may lack;
    # add sbin only when PATH already holds the matching bin directory.
    extra = [s for s in _SBIN_DIRS if s not in parts and s.replace("sbin", "bin") in parts]
    return os.pathsep.join(parts + extra)


def which(name: str) -> str | None:
    """Full path of program ``name``, or None."""
    return shutil.which(name, path=_search_path())


def require(name: str) -> str:
    """Full path of program ``name``; a one-line ToolError naming its package if absent."""
    found = which(name)
    if found is None:
        package = DEBIAN_PACKAGES.get(name)
        hint = (
            f"install the Debian package {package} (apt-get install {package}, "
            "or `make system-deps` as root)"
            if package
            else "install it and make sure it is on PATH"
        )
        raise ToolError(f"{name} not found: {hint}")
    return found


@dataclass(frozen=True)
class Completed:
    """What a finished program left: its command line, exit code and output."""

    argv: list[str]
    returncode: int
    stdout: str
    stderr: str
    elapsed_s: float


def run(
    argv: Sequence[str],
    *,
    timeout_s: float = ADMIN_TIMEOUT_S,
    check: bool = True,
    input_text: str | None = None,
) -> Completed:
    """Run ``argv`` to completion within ``timeout_s``; ToolError on overrun or failure.

    On a timeout or an interrupt the child is killed before the exception propagates
    (subprocess.run does this), so no program outlives the call.
    """
    import time

    args = [str(a) for a in argv]
    start_s = time.monotonic()
    try:
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
            input=input_text,
            stdin=None if input_text is not None else subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        shown = redact(" ".join(args))
        raise ToolError(f"{args[0]} did not finish within {timeout_s:g} s: {shown}") from exc
    except FileNotFoundError as exc:
        raise ToolError(f"{args[0]} not found") from exc
    done = Completed(args, proc.returncode, proc.stdout, proc.stderr, time.monotonic() - start_s)
    if check and proc.returncode != 0:
        raise ToolError(
            f"{os.path.basename(args[0])} failed (exit {proc.returncode}): "
            f"{redact(first_line(proc.stderr) or first_line(proc.stdout))}"
        )
    return done


#: Generated passwords, replaced by ``<password>`` in anything shown or recorded.
SECRETS: set[str] = set()


def redact(text: str) -> str:
    """``text`` with every generated password replaced by ``<password>``."""
    for secret in SECRETS:
        text = text.replace(secret, "<password>")
    return text


def redact_argv(argv: Sequence[str]) -> list[str]:
    """A command line with generated passwords replaced (for provenance and messages)."""
    return [redact(str(a)) for a in argv]


def first_line(text: str) -> str:
    """The first non-empty line of ``text``, stripped (for one-line error messages)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def version_of(name: str) -> str:
    """A one-line version string of program ``name`` (empty when it cannot be asked)."""
    path = which(name)
    if path is None:
        return ""
    flags = {
        "redis-server": ["--version"],
        "redis-benchmark": ["--version"],
        "nginx": ["-v"],
        "ab": ["-V"],
        "wrk": ["-v"],
        "ip": ["-V"],
        "iptables": ["--version"],
    }.get(name, ["--version"])
    try:
        done = run([path, *flags], check=False, timeout_s=10.0)
    except Exception:  # a version query must never stop a measurement
        return ""
    text = first_line(done.stdout) or first_line(done.stderr)
    return re.sub(r"\s+", " ", text)
