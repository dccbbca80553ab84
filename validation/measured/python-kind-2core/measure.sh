#!/usr/bin/env bash
# Re-make this data set (as root, from the repository root, after `make install system-deps`).
# `python -m sim.harness measure` is the same command as `uksim measure`. Each run waits
# (up to 60 s) until other work takes less than 15% of the cores (QUIET="" turns that off).
set -euo pipefail
UKSIM=${UKSIM:-".venv/bin/python -m sim.harness"}
QUIET=${QUIET-"--quiet-below 15 --quiet-wait-s 60"}
D=${1:-validation/measured/python-kind-2core}
$UKSIM measure redis $QUIET --path loopback,veth,bridge-nat --runs 5 -P 10 -n 50000 \
  -t PING_INLINE,PING_MBULK,SET,GET,INCR,LPUSH,LPOP,SADD,SPOP,LRANGE_100,LRANGE_600,MSET \
  -c 1,2,5,10,20,50,100 --out "$D/redis-P10"
$UKSIM measure redis $QUIET --aof --path loopback --runs 5 -P 10 -n 50000 -t SET,GET,INCR -c 10 \
  --out "$D/redis-aof-loopback"
$UKSIM measure http $QUIET --server nginx --tool ab --path loopback,veth,bridge-nat --runs 5 \
  -n 10000 -c 1,10,50,100 --out "$D/http-ab-close"
$UKSIM measure http $QUIET --server nginx --tool ab --keepalive --path loopback,veth,bridge-nat \
  --runs 5 -n 10000 -c 1,10,50,100 --out "$D/http-ab-keepalive"
