"""Safety rules of the harness: where load may go, and who may build namespaces.

The harness sends load only to loopback (127.0.0.0/8) or to addresses that it assigned
itself, inside network namespaces and on links it created, all drawn from 198.18.0.0/15
(RFC 2544's benchmarking range). :func:`check_load_target` is called before every load
tool starts and before every readiness probe; it refuses anything else. Addresses the
harness hands out are registered in :data:`OWNED_ADDRESSES` while they exist.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Collection

from sim.errors import UksimError

LOOPBACK_NET = ipaddress.ip_network("127.0.0.0/8")
BENCH_NET = ipaddress.ip_network("198.18.0.0/15")

#: Addresses from 198.18.0.0/15 that this process assigned and still owns.
OWNED_ADDRESSES: set[str] = set()


class SafetyError(UksimError):
    """The harness refused to do something unsafe (load to a foreign address)."""


def check_bench_address(address: str) -> ipaddress.IPv4Address:
    """Return ``address`` parsed; refuse it unless it lies in 198.18.0.0/15."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise SafetyError(f"not an IP address: {address!r}") from exc
    if not isinstance(ip, ipaddress.IPv4Address) or ip not in BENCH_NET:
        raise SafetyError(f"refusing to assign {address}: harness addresses come from {BENCH_NET}")
    return ip


def check_load_target(address: str, owned: Collection[str] | None = None) -> None:
    """Refuse to send load to ``address`` unless it is loopback or harness-owned.

    ``owned`` defaults to :data:`OWNED_ADDRESSES`. An owned address must also lie in
    198.18.0.0/15: nothing outside that range counts as the harness's own.
    """
    try:
        ip = ipaddress.ip_address(address)
    except ValueError as exc:
        raise SafetyError(f"refusing load: {address!r} is not an IP address") from exc
    if isinstance(ip, ipaddress.IPv4Address) and ip in LOOPBACK_NET:
        return
    owned_set = OWNED_ADDRESSES if owned is None else owned
    if isinstance(ip, ipaddress.IPv4Address) and ip in BENCH_NET and str(ip) in owned_set:
        return
    raise SafetyError(
        f"refusing load to {address}: only 127.0.0.0/8 or addresses this harness assigned "
        f"in {BENCH_NET} may be targeted"
    )


def require_root(path: str) -> None:
    """Refuse a namespace path (veth, bridge-nat) when not running as root."""
    if os.geteuid() != 0:
        raise UksimError(
            f"--path {path} needs root (it creates network namespaces, links and iptables "
            "rules); run as root or use --path loopback"
        )
