"""Does the path's MTU, not the veth, cost nginx its keep-alive throughput? (run as root)

The harness's veth path (``sim.harness.netpaths.setup_veth``) and its nginx
(``sim.harness.servers.start_nginx``: one worker, sendfile, tcp_nopush, a 1450-byte
page, access log off), reached two ways: from the host across the veth pair, and from
inside the server's namespace to the server's own address, which runs over that
namespace's loopback device. Each way is run at its usual MTU and at the other's
(loopback 65536 and 1500, veth 1500 and 65535), with ab -k and without, at -c 1, 10 and
50, the conditions interleaved within each round. For each run: requests per second, CPU
time per request of ab and of nginx's worker, their voluntary context switches (sleeps)
per request, and the TCP segments the namespace received and sent per request
(``nstat``: TcpInSegs, TcpOutSegs; over loopback both ends are in the namespace, over
the veth only the server).

Usage, from the repository root: ``sudo .venv/bin/python
validation/measured/python-kind-2core/mtu-check/mtu_check.py [ROUNDS] > results.txt``.
Everything it creates (namespace ``uksim-*``, veth, nginx, its directory) is removed on
exit, as by ``uksim measure``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository's sim/

from sim.harness.cleanup import CleanupStack
from sim.harness.netpaths import Endpoint, setup_veth
from sim.harness.servers import start_nginx

PAGE_BYTES = 1450
CONDITIONS = (("loopback", 65536), ("loopback", 1500), ("veth", 1500), ("veth", 65535))
LOADS = (1, 10, 50)
REQUESTS = 10000


def ip(*args: str) -> str:
    return subprocess.run(["ip", *args], check=True, capture_output=True, text=True).stdout


def set_mtu(ep: Endpoint, path: str, mtu: int) -> None:
    host_end, ns_end = ep.details["links"]  # type: ignore[misc]
    if path == "loopback":
        ip("-n", str(ep.netns), "link", "set", "lo", "mtu", str(mtu))
    else:
        ip("link", "set", host_end, "mtu", str(mtu))
        ip("-n", str(ep.netns), "link", "set", ns_end, "mtu", str(mtu))


def proc_cpu(pid: int) -> tuple[float, int]:
    """CPU seconds and voluntary context switches of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    vol = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text()
               .splitlines() if line.startswith("voluntary_ctxt_switches"))
    return cpu, vol


def nstat(ep: Endpoint) -> dict[str, int]:
    out = subprocess.run([*ep.exec_prefix(), "nstat", "-s", "-a", "-z", "TcpInSegs",
                          "TcpOutSegs"], check=True, capture_output=True, text=True).stdout
    return {line.split()[0]: int(line.split()[1]) for line in out.splitlines()
            if line and not line.startswith("#")}


def run(ep: Endpoint, path: str, clients: int, keepalive: bool, worker: int) -> str:
    url = f"http://{ep.target_address}:{ep.target_port}/index.html"
    cmd = [*(ep.exec_prefix() if path == "loopback" else []), "ab",
           *(["-k"] if keepalive else []), "-c", str(clients), "-n", str(REQUESTS), url]
    n0, s0 = proc_cpu(worker), nstat(ep)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read() if p.stdout else ""
    _, status, ru = os.wait4(p.pid, 0)
    n1, s1 = proc_cpu(worker), nstat(ep)
    if status != 0:
        raise SystemExit(f"ab failed: {' '.join(cmd)}")
    rps = next(float(x.split()[3]) for x in out.splitlines() if x.startswith("Requests per"))
    us = 1e6 / REQUESTS
    return (f"{rps:8.0f} {us * (ru.ru_utime + ru.ru_stime):6.1f} {ru.ru_nvcsw / REQUESTS:5.2f} "
            f"{us * (n1[0] - n0[0]):8.1f} {(n1[1] - n0[1]) / REQUESTS:6.2f} "
            f"{(s1['TcpInSegs'] - s0['TcpInSegs']) / REQUESTS:5.2f} "
            f"{(s1['TcpOutSegs'] - s0['TcpOutSegs']) / REQUESTS:5.2f}")


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with CleanupStack() as stack:
        ep = setup_veth(stack, 80)
        server = start_nginx(stack, ep, workers=1, page_bytes=PAGE_BYTES)
        children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
        for _ in range(50):  # the master forks its worker
            if children.read_text().split():
                break
            time.sleep(0.1)
        worker = int(children.read_text().split()[0])
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} load {Path('/proc/loadavg').read_text()}"
              f"# kernel {os.uname().release}; ab -n {REQUESTS}; page {PAGE_BYTES} B; "
              "per request: CPU us and voluntary context switches of ab and of nginx's "
              "worker, TCP segments received and sent in the server's namespace")
        print("round path      mtu  mode        -c    req/s  ab_us ab_cs nginx_us ngx_cs "
              " s_in s_out")
        for r in range(1, rounds + 1):
            for path, mtu in CONDITIONS:
                set_mtu(ep, path, mtu)
                for c in LOADS:
                    for ka in (True, False):
                        row = run(ep, path, c, ka, worker)
                        print(f"{r:5d} {path:8s} {mtu:5d}  {'keep-alive' if ka else 'close':10s}"
                              f" {c:3d} {row}", flush=True)
        print(f"# done {time.strftime('%H:%M:%S')} load {Path('/proc/loadavg').read_text()}",
              end="")


if __name__ == "__main__":
    main()
