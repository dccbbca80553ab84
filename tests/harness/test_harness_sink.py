"""The harness's log sink: it takes datagrams on loopback, counts every one, keeps none.

No root, no Debian package: a UDP socket on 127.0.0.1 and this process's own datagrams.
"""

from __future__ import annotations

import socket
import time

import pytest

from sim.harness.collector import UdpSink


def test_the_sink_counts_what_reaches_it_and_drops_it():
    sink = UdpSink("127.0.0.1")
    try:
        sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(3000):
            sender.sendto(b"<190>Dec  1 00:00:00 host nginx: x" * 4, ("127.0.0.1", sink.port))
        sender.close()
        time.sleep(0.05)
        assert sink.received() == 3000
        # its receive buffer is the kernel's smallest: nearly all were dropped, not queued
        assert sink.drops() >= 2900
        assert sink.received() == 3000  # counting twice counts nothing new
    finally:
        sink.close()


@pytest.mark.parametrize("address", ["8.8.8.8", "10.0.0.1", "::1"])
def test_the_sink_binds_only_to_loopback_or_the_benchmarking_range(address):
    with pytest.raises(ValueError, match=r"only loopback or 198\.18\.0\.0/15"):
        UdpSink(address)
