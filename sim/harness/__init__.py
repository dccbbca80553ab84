"""The measurement harness: real servers and real load tools on this machine.

Stands beside the engine, not on it: it runs redis-server, nginx, redis-benchmark, ab
and wrk on loopback and in network namespaces it creates, and writes tidy CSV data in
the schema that validation reads.
"""
