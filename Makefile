# Set-up and everyday commands. `make run` and `make test` do all the set-up they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEBIAN_PACKAGES := redis-server redis-tools nginx apache2-utils wrk iproute2 iptables

.PHONY: install system-deps run theory test bench lint clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages for the measurement harness; installed only when run as root.
# Services must not start at install time (a fresh machine may have no init system, and
# the harness starts its own servers): a policy-rc.d that forbids starting them is put in
# place for the install when the machine has none, and removed afterwards.
system-deps:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then echo "Debian packages present"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "installing Debian packages:$$missing"; \
	  export DEBIAN_FRONTEND=noninteractive; policy=/usr/sbin/policy-rc.d; made=""; log=$$(mktemp); \
	  if [ ! -e $$policy ]; then printf '#!/bin/sh\nexit 101\n' > $$policy; \
	    chmod 755 $$policy; made=1; fi; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends $$missing \
	    > $$log 2>&1; rc=$$?; \
	  if [ -n "$$made" ]; then rm -f $$policy; fi; \
	  if [ $$rc != 0 ]; then tail -20 $$log; rm -f $$log; exit $$rc; fi; rm -f $$log; \
	  for p in $$missing; do dpkg -s $$p >/dev/null 2>&1 || \
	    { echo "Debian package $$p did not install"; exit 1; }; done; \
	else echo "not root: Debian packages$$missing not installed; harness tests will be skipped"; fi

# The main job: the reference study's four tables (Redis, two HTTP services, start-up),
# every cell measured beside predicted, in and out of sample, and its figures redrawn
# (out/jaworski2019-table1.png ... table4.png; every report in out/jaworski2019.json).
run: install
	mkdir -p out
	$(BIN)/uksim validate jaworski2019 --table all --json out/jaworski2019.json \
	  --plot out/jaworski2019.png

# The engine against queueing theory (M/M/1, M/D/1, M/M/4, a tandem, a closed network).
theory: install
	$(BIN)/uksim run scenarios/theory/mm1.toml scenarios/theory/md1.toml \
	  scenarios/theory/mmc.toml scenarios/theory/tandem5.toml scenarios/theory/closed.toml

test: install system-deps
	$(BIN)/ruff check sim tests benchmarks
	$(BIN)/pytest -q

bench: install
	$(BIN)/pytest benchmarks --benchmark-only --benchmark-columns=min,median,max,rounds -q

lint: install
	$(BIN)/ruff check sim tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .benchmarks
