"""The network paths a server can sit behind: loopback, veth, and bridge plus NAT.

- ``loopback``: server and client on the host, 127.0.0.1 (the bare-metal host path).
- ``veth``: the server in a network namespace ``uksim-<id>`` joined to the host by a veth
  pair; host end 198.18.X.1/30, server end 198.18.X.2/30.
- ``bridge-nat``: the server's namespace hangs off a Linux bridge ``uksim-<id>b``
  (198.19.X.1/24, server 198.19.X.2/24), and a port is published on a host address
  198.18.X.1/32 (added to the bridge) by iptables DNAT rules in the nat table's OUTPUT
  chain (locally generated traffic) and PREROUTING chain, as Docker publishes a port
  without its user-space proxy.

Every name starts with ``uksim-``, every address comes from 198.18.0.0/15 and is checked
with :func:`sim.harness.safety.check_bench_address`, and every step is undone through the
:class:`~sim.harness.cleanup.CleanupStack` (the undo is registered before the step, so an
interrupt in between still undoes it; undo steps ignore "does not exist").
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import re
import secrets
import shutil
import signal
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from sim.errors import ToolError
from sim.harness import safety, tools
from sim.harness.cleanup import CleanupStack

PATHS = ("loopback", "veth", "bridge-nat")
PREFIX = "uksim-"


@dataclass
class Endpoint:
    """Where a server listens and where the load tool connects, for one path."""

    path: str
    netns: str | None
    listen_address: str
    listen_port: int
    target_address: str
    target_port: int
    details: dict[str, object] = field(default_factory=dict)
    # the host's own address as the server reaches it (where a log collector listens)
    host_address: str = "127.0.0.1"

    def exec_prefix(self) -> list[str]:
        """Command prefix that runs a program inside the server's namespace."""
        if self.netns is None:
            return []
        return [tools.require("ip"), "netns", "exec", self.netns]


def new_id() -> str:
    """A fresh 6-hex-digit id; names are ``uksim-<id>`` (at most 15 bytes with suffix)."""
    return secrets.token_hex(3)


def free_loopback_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _used_third_octets() -> set[int]:
    """Third octets of 198.18.X.* and 198.19.X.* addresses already on this host."""
    done = tools.run([tools.require("ip"), "-4", "-o", "addr", "show"], check=False)
    used: set[int] = set()
    for m in re.finditer(r"inet (198\.1[89])\.(\d+)\.\d+", done.stdout):
        used.add(int(m.group(2)))
    return used


def _pick_octet() -> int:
    used = _used_third_octets()
    free = [x for x in range(1, 255) if x not in used]
    if not free:
        raise ToolError("no free 198.18.X.0/24 block left for a harness namespace")
    return secrets.choice(free)


def _ip(*args: str, check: bool = True) -> tools.Completed:
    return tools.run([tools.require("ip"), *args], check=check)


def _iptables(*args: str, check: bool = True) -> tools.Completed:
    return tools.run([tools.require("iptables"), "-w", "5", *args], check=check)


def _own(stack: CleanupStack, address: str) -> None:
    """Register ``address`` (must lie in 198.18.0.0/15) as harness-owned while it exists."""
    safety.check_bench_address(address)
    safety.OWNED_ADDRESSES.add(address)
    stack.push(f"address {address}", lambda: safety.OWNED_ADDRESSES.discard(address))


#: Where each namespace's owner (the pid of the measuring process) is recorded, so
#: ``uksim measure cleanup`` removes only what a dead measurement left.
OWNER_DIR = Path("/run/uksim-owners")


def owner_alive(pid_text: str) -> bool:
    """True when ``pid_text`` names a running process."""
    try:
        pid = int(pid_text.strip())
        os.kill(pid, 0)
    except (ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    return True


def _record_owner(stack: CleanupStack, uid: str) -> None:
    """Write ``/run/uksim-owners/<id>`` = our pid; removed after everything else."""
    OWNER_DIR.mkdir(mode=0o755, exist_ok=True)
    owner = OWNER_DIR / uid
    stack.push(f"owner file {owner}", lambda: owner.unlink(missing_ok=True))
    owner.write_text(f"{os.getpid()}\n")


def _id_of(name: str) -> str:
    """The 6-hex-digit id inside a harness name (``uksim-<id>[suffix]``)."""
    return name[len(PREFIX):len(PREFIX) + 6]


def is_stale(name_or_id: str) -> bool:
    """True when the measurement that made this object is no longer running."""
    uid = _id_of(name_or_id) if name_or_id.startswith(PREFIX) else name_or_id
    try:
        return not owner_alive((OWNER_DIR / uid).read_text())
    except OSError:
        return True


def _add_netns(stack: CleanupStack, name: str) -> None:
    _record_owner(stack, _id_of(name))
    stack.push(f"namespace {name}", lambda: _ip("netns", "delete", name, check=False))
    _ip("netns", "add", name)
    _ip("-n", name, "link", "set", "lo", "up")


def _add_veth(stack: CleanupStack, host_end: str, ns_end: str, netns: str) -> None:
    stack.push(f"link {host_end}", lambda: _ip("link", "delete", host_end, check=False))
    _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end, "netns", netns)


def setup_loopback(stack: CleanupStack, server_port: int | None = None) -> Endpoint:
    """The host path: 127.0.0.1 and a free port (nothing to undo)."""
    port = server_port or free_loopback_port()
    return Endpoint("loopback", None, "127.0.0.1", port, "127.0.0.1", port)


def setup_veth(stack: CleanupStack, server_port: int) -> Endpoint:
    """A namespace joined to the host by a veth pair; the server listens on 198.18.X.2."""
    uid = new_id()
    ns, host_end, ns_end = f"{PREFIX}{uid}", f"{PREFIX}{uid}h", f"{PREFIX}{uid}c"
    x = _pick_octet()
    host_ip, server_ip = f"198.18.{x}.1", f"198.18.{x}.2"
    for a in (host_ip, server_ip):
        _own(stack, a)
    _add_netns(stack, ns)
    _add_veth(stack, host_end, ns_end, ns)
    _ip("addr", "add", f"{host_ip}/30", "dev", host_end)
    _ip("link", "set", host_end, "up")
    _ip("-n", ns, "addr", "add", f"{server_ip}/30", "dev", ns_end)
    _ip("-n", ns, "link", "set", ns_end, "up")
    _ip("-n", ns, "route", "add", "default", "via", host_ip)
    return Endpoint(
        "veth",
        ns,
        server_ip,
        server_port,
        server_ip,
        server_port,
        {"netns": ns, "links": [host_end, ns_end], "host_address": f"{host_ip}/30",
         "server_address": f"{server_ip}/30"},
        host_ip,
    )


def _nat_rule(published: str, pub_port: int, server: str, port: int, tag: str) -> list[str]:
    """Match and target of one DNAT rule (without table, command and chain)."""
    return [
        "-d", f"{published}/32", "-p", "tcp", "--dport", str(pub_port),
        "-m", "comment", "--comment", tag,
        "-j", "DNAT", "--to-destination", f"{server}:{port}",
    ]


def setup_bridge_nat(stack: CleanupStack, server_port: int, published_port: int) -> Endpoint:
    """A namespace behind a bridge, its port published on 198.18.X.1 by iptables DNAT."""
    uid = new_id()
    ns, bridge = f"{PREFIX}{uid}", f"{PREFIX}{uid}b"
    host_end, ns_end = f"{PREFIX}{uid}h", f"{PREFIX}{uid}c"
    tag = f"{PREFIX}{uid}"
    x = _pick_octet()
    bridge_ip, server_ip, published_ip = f"198.19.{x}.1", f"198.19.{x}.2", f"198.18.{x}.1"
    for a in (bridge_ip, server_ip, published_ip):
        _own(stack, a)
    _add_netns(stack, ns)
    stack.push(f"bridge {bridge}", lambda: _ip("link", "delete", bridge, check=False))
    _ip("link", "add", bridge, "type", "bridge")
    _ip("addr", "add", f"{bridge_ip}/24", "dev", bridge)
    _ip("addr", "add", f"{published_ip}/32", "dev", bridge)
    _ip("link", "set", bridge, "up")
    _add_veth(stack, host_end, ns_end, ns)
    _ip("link", "set", host_end, "master", bridge)
    _ip("link", "set", host_end, "up")
    _ip("-n", ns, "addr", "add", f"{server_ip}/24", "dev", ns_end)
    _ip("-n", ns, "link", "set", ns_end, "up")
    _ip("-n", ns, "route", "add", "default", "via", bridge_ip)
    rules = []
    spec = _nat_rule(published_ip, published_port, server_ip, server_port, tag)
    for chain in ("OUTPUT", "PREROUTING"):
        add = ["-t", "nat", "-A", chain, *spec]
        delete = ["-t", "nat", "-D", chain, *spec]
        stack.push(f"iptables rule in nat {chain}", lambda d=delete: _iptables(*d, check=False))
        _iptables(*add)
        rules.append(" ".join(add))
    return Endpoint(
        "bridge-nat",
        ns,
        server_ip,
        server_port,
        published_ip,
        published_port,
        {"netns": ns, "bridge": bridge, "links": [host_end, ns_end],
         "bridge_address": f"{bridge_ip}/24", "server_address": f"{server_ip}/24",
         "published_address": f"{published_ip}/32", "iptables_rules": rules},
        bridge_ip,
    )


def setup(stack: CleanupStack, path: str, server_port: int, published_port: int) -> Endpoint:
    """Build ``path`` (one of :data:`PATHS`); root is required except for loopback."""
    if path == "loopback":
        return setup_loopback(stack)
    safety.require_root(path)
    tools.require("ip")
    if path == "veth":
        return setup_veth(stack, server_port)
    if path == "bridge-nat":
        tools.require("iptables")
        return setup_bridge_nat(stack, server_port, published_port)
    raise ToolError(f"unknown path {path!r}; choose from {', '.join(PATHS)}")


def leftovers(stale_only: bool = False) -> dict[str, list[str]]:
    """Harness-made objects present: namespaces, links, iptables rules (for tests and
    ``uksim measure cleanup``); with ``stale_only``, only those whose measurement ended."""
    found: dict[str, list[str]] = {"netns": [], "links": [], "iptables": []}
    ns_dir = Path("/run/netns")
    if ns_dir.is_dir():
        found["netns"] = sorted(p.name for p in ns_dir.iterdir() if p.name.startswith(PREFIX))
    if tools.which("ip"):
        out = _ip("-o", "link", "show", check=False).stdout
        found["links"] = sorted(
            {m.group(1) for m in re.finditer(r"^\d+: (uksim-[0-9a-f]+[a-z]?)[@:]", out, re.M)}
        )
    if tools.which("iptables-save") and _is_root():
        out = tools.run([tools.require("iptables-save"), "-t", "nat"], check=False).stdout
        found["iptables"] = [ln for ln in out.splitlines() if PREFIX in ln]
    if stale_only:
        found["netns"] = [n for n in found["netns"] if is_stale(n)]
        found["links"] = [n for n in found["links"] if is_stale(n)]
        found["iptables"] = [r for r in found["iptables"] if is_stale(_rule_id(r))]
    return found


def _rule_id(rule: str) -> str:
    m = re.search(r"--comment \"?(uksim-[0-9a-f]{6})", rule)
    return m.group(1) if m else PREFIX + "000000"


def _is_root() -> bool:
    return os.geteuid() == 0


def harness_server_pids(stale_only: bool = False) -> list[int]:
    """Pids of servers the harness started: redis-server or nginx whose command line
    names a ``uksim-`` directory, or any process inside a ``uksim-`` namespace. With
    ``stale_only``, only those whose measuring process has ended."""
    pids: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        m = re.search(rf"(/\S*/{PREFIX}[^/\s]+)/", cmdline)
        if comm in ("redis-server", "nginx") and m:
            owner = Path(m.group(1)) / "owner.pid"
            try:
                alive = owner_alive(owner.read_text())
            except OSError:
                alive = False
            if not (stale_only and alive):
                pids.add(int(entry.name))
    for name in leftovers(stale_only)["netns"]:
        out = _ip("netns", "pids", name, check=False).stdout
        pids.update(int(p) for p in out.split() if p.isdigit())
    return sorted(pids)


def orphaned_load_tools() -> list[int]:
    """Load tools left running by a killed measurement: redis-benchmark, ab or wrk whose
    parent has gone (re-parented to init) and whose target lies in 198.18.0.0/15."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
            if comm not in ("redis-benchmark", "ab", "wrk"):
                continue
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            cmdline = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if ppid == 1 and re.search(r"(^|[\0/])198\.1[89]\.\d+\.\d+", cmdline):
            pids.append(int(entry.name))
    return pids


def stale_server_dirs(base: str | None = None) -> list[Path]:
    """Servers' private ``uksim-*`` temp dirs whose measuring process has ended."""
    out = []
    for d in Path(base or tempfile.gettempdir()).glob(f"{PREFIX}*"):
        owner = d / "owner.pid"
        try:
            if d.is_dir() and owner.is_file() and not owner_alive(owner.read_text()):
                out.append(d)
        except OSError:
            continue
    return out


def remove_leftovers() -> dict[str, list[str]]:
    """Stop the servers and delete the ``uksim-`` namespaces, links, nat rules and temp dirs a
    measurement which no longer runs left behind (killed with SIGKILL, or a crash).

    Objects of a measurement still running are left alone (see :data:`OWNER_DIR`).
    """
    found: dict[str, list[str]] = {"processes": [], **leftovers(stale_only=True)}
    for pid in harness_server_pids(stale_only=True):
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            continue
        except PermissionError:
            os.kill(pid, signal.SIGKILL)
        found["processes"].append(str(pid))
    for pid in orphaned_load_tools():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
            found["processes"].append(str(pid))
    for rule in found["iptables"]:
        args = rule.split()
        if args and args[0] == "-A":
            args[0] = "-D"
            _iptables("-t", "nat", *_unquote(args), check=False)
    for name in found["netns"]:
        _ip("netns", "delete", name, check=False)
    for name in found["links"]:
        _ip("link", "delete", name, check=False)
    for name in found["netns"]:
        (OWNER_DIR / _id_of(name)).unlink(missing_ok=True)
    found["directories"] = [str(d) for d in stale_server_dirs()]
    for d in found["directories"]:
        shutil.rmtree(d, ignore_errors=True)
    after = leftovers(stale_only=True)
    if any(after.values()):
        raise ToolError(f"could not remove every harness object: {after}")
    return found


def _unquote(args: list[str]) -> list[str]:
    return [a.strip('"') for a in args]


def in_bench_range(address: str) -> bool:
    """True when ``address`` lies in 198.18.0.0/15."""
    return ipaddress.ip_address(address) in safety.BENCH_NET
