"""uksim: a discrete-event simulator of network I/O paths.

Bare-metal Linux, Linux in a KVM guest (virtio-net), unikernels on KVM (OSv, Rumprun),
NetBSD in KVM and namespace-isolated containers, with the servers (Redis, HTTP) and load
generators (redis-benchmark, ab, wrk) that run on them. The package holds the engine
(:mod:`sim.kernel`, :mod:`sim.cpu`, :mod:`sim.stages`, ...), the statistics, the scenario
loader, the runner and the CLI.
"""

__version__ = "0.1.0"
