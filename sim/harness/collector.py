"""Where a measured server's syslog datagrams go: a UDP socket that never reads them.

When nginx ships its access log over the network (``access_log syslog:server=``), every
request sends a datagram. A collector on the same small machine would spend CPU reading
them and take it from the server and the load tool, and the models do not cost it (they
cost the sender's path and the receiving socket's enqueue only). So the harness's
:class:`UdpSink` is a socket, held by the harness itself, that receives and never
reads: with the smallest receive buffer the kernel allows, a datagram crosses the whole
sending and receiving path up to the socket's queue and is then dropped, as it would be
queued for a reader elsewhere. What arrived is counted from the kernel's own counters:
the socket's drops (``/proc/net/udp``) plus what sits in its queue.

It binds only to loopback (127.0.0.0/8) or to an address of the benchmarking range
(198.18.0.0/15) that the harness assigned to its own test network; it closes with the
cleanup stack (and with the harness's process, however that ends).
"""

from __future__ import annotations

import ipaddress
import os
import socket
from pathlib import Path

from sim.harness.safety import BENCH_NET, LOOPBACK_NET

PROC_UDP = Path("/proc/net/udp")


class UdpSink:
    """A bound UDP socket that drops what reaches it and counts it."""

    def __init__(self, address: str, port: int = 0) -> None:
        ip = ipaddress.ip_address(address)
        if not isinstance(ip, ipaddress.IPv4Address) or (ip not in LOOPBACK_NET
                                                          and ip not in BENCH_NET):
            raise ValueError(f"refusing to bind a log sink to {address}: only loopback or "
                             "198.18.0.0/15")
        self.address = address
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1)  # the kernel's minimum
        self._sock.setblocking(False)
        self._sock.bind((address, port))
        self.port = int(self._sock.getsockname()[1])
        self._inode = os.fstat(self._sock.fileno()).st_ino
        self._drained = 0

    def drops(self) -> int:
        """Datagrams the kernel dropped at this socket's full queue."""
        for line in PROC_UDP.read_text().splitlines()[1:]:
            fields = line.split()
            # sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            if len(fields) >= 13 and fields[9] == str(self._inode):
                return int(fields[12])
        return 0

    def received(self) -> int:
        """Datagrams that reached the socket so far: dropped, or taken from its queue now."""
        while True:
            try:
                self._sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            self._drained += 1
        return self.drops() + self._drained

    def close(self) -> None:
        self._sock.close()
