"""Where does a long LRANGE reply's time go: Redis, redis-benchmark, or neither? (root)

redis-server as the harness starts it (``sim.harness.servers.start_redis``: a generated
password, no persistence) on loopback, a list of 20,000 three-byte elements, then
``redis-benchmark -P 10 -c C LRANGE mylist 0 N-1`` for N from 100 to 1,000 elements
and C in 1, 10 and 50, the conditions interleaved within each round. For each run:
requests per second, the CPU time per request of the server (``/proc/PID/schedstat``,
ns) and of redis-benchmark (its rusage), and the wall time per request against the
larger of the two CPU times: if the server and the client overlapped perfectly, the
wall time would equal it.

Usage, from the repository root: ``sudo .venv/bin/python
validation/measured/python-kind-2core/lrange-check/lrange_check.py [ROUNDS] >
results.txt``. Everything it starts is removed on exit, as by ``uksim measure``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[4]))  # the repository's sim/

from sim.harness import tools
from sim.harness.cleanup import CleanupStack
from sim.harness.netpaths import setup_loopback
from sim.harness.servers import start_redis

ELEMENTS = (100, 200, 300, 400, 500, 600, 800, 1000)
CLIENTS = (1, 10, 50)
PIPELINE = 10
ELEMENT_WORK = 4_000_000  # elements returned per run: -n is this over N (+20)


def server_cpu_ns(pid: int) -> int:
    """CPU time the process has run so far (ns; its main thread: Redis's event loop)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])


def bench(target: list[str], *words: str, clients: int, requests: int
          ) -> tuple[str, float] | None:
    """Run redis-benchmark; its stdout and its CPU seconds (None if it failed)."""
    p = subprocess.Popen([*target, "-c", str(clients), "-P", str(PIPELINE), "-n",
                          str(requests), "-q", *words], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    out = p.stdout.read() if p.stdout else ""
    _, status, ru = os.wait4(p.pid, 0)
    if status != 0:
        return None
    return out, ru.ru_utime + ru.ru_stime


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    with CleanupStack() as stack:
        ep = setup_loopback(stack)
        server = start_redis(stack, ep, aof=False)
        target = [tools.require("redis-benchmark"), "-h", ep.target_address, "-p",
                  str(ep.target_port), "-a", str(server.password)]
        if bench(target, "LPUSH", "mylist", "xxx", clients=10, requests=20000) is None:
            raise SystemExit("redis-benchmark could not fill the list")
        pid = server.process.pid
        print(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} load {Path('/proc/loadavg').read_text()}"
              f"# kernel {os.uname().release}; redis-benchmark -P {PIPELINE}; a 3-byte "
              "element is 9 bytes of reply; per request: CPU us of the server and of "
              "redis-benchmark, wall us, and wall over the larger CPU time")
        print("round     N   -c    req/s  server_us  client_us  wall_us  wall/max")
        for r in range(1, rounds + 1):
            for n in ELEMENTS:
                for c in CLIENTS:
                    requests = ELEMENT_WORK // (n + 20)
                    s0 = server_cpu_ns(pid)
                    ran = bench(target, "LRANGE", "mylist", "0", str(n - 1), clients=c,
                                requests=requests)
                    if ran is None:  # reported, not retried: the row stays missing
                        print(f"{r:5d} {n:5d} {c:4d}   redis-benchmark failed", flush=True)
                        continue
                    out, client_s = ran
                    server_us = (server_cpu_ns(pid) - s0) / 1e3 / requests
                    client_us = client_s * 1e6 / requests
                    rps = float(out.split("requests per second")[0].split()[-1])
                    wall = 1e6 / rps
                    print(f"{r:5d} {n:5d} {c:4d} {rps:8.0f} {server_us:10.2f} {client_us:10.2f}"
                          f" {wall:8.2f} {wall / max(server_us, client_us):9.2f}", flush=True)
        print(f"# done {time.strftime('%H:%M:%S')} load {Path('/proc/loadavg').read_text()}",
              end="")


if __name__ == "__main__":
    main()
