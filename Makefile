# norce-sync: every target does its own set-up (venv, install, broker) on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
KAFKA_PORT ?= 9092
export KAFKA_PORT

.PHONY: help install demo demo-check test lint format kafka-up kafka-down kafka-fetch registry-fetch bench bench-tools clean browser

help:
	@echo "make demo        local broker + Norce simulator + worker + sample change data"
	@echo "make demo-check  the demo unattended, on its own broker; fails unless it all works"
	@echo "make test        lint, then all tests (starts its own broker from tools/kafka)"
	@echo "make kafka-up    start the local Kafka broker on 127.0.0.1:$(KAFKA_PORT)"
	@echo "make kafka-down  stop it"
	@echo "make registry-fetch  build the tests' schema registry (Apicurio) from Maven Central"
	@echo "make lint        ruff check, ruff format --check and lint-imports (the layers)"
	@echo "make bench       run the benchmarks in bench/ (results go to bench/RESULTS.md)"

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[rocksdb,test,dev]'
	touch $@

install: $(VENV)/.installed

kafka-fetch:
	tools/kafka/kafka.sh fetch

# Apicurio Registry (Confluent-compatible schema registry) for the Avro input tests.
registry-fetch:
	tools/registry/registry.sh fetch

kafka-up:
	tools/kafka/kafka.sh up

kafka-down:
	tools/kafka/kafka.sh down

# lint-imports: the layers of .importlinter (norce <- streams <- agents.config <- flows
# <- reconcile <- ops; shipped code never imports the simulator).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The dashboard test drives Debian's chromium (as root; Playwright's own browsers are not used).
browser:
	command -v chromium || (apt-get update && apt-get install -y chromium)

# The tests start their own broker (tools/kafka) unless KAFKA_BOOTSTRAP_SERVERS is set, and
# their own schema registry (tools/registry) unless SCHEMA_REGISTRY_URL is set. The 20
# slowest tests are listed at the end: the suite should stay near 15 minutes.
test: install lint kafka-fetch registry-fetch browser
	$(PY) -m pytest -ra --durations=20 $(PYTEST_ARGS)

demo: install kafka-up
	tools/demo.sh

# Starts its own broker on free ports; tests/e2e/test_demo_check.py runs it in `make test`.
demo-check: install kafka-fetch
	tools/demo.sh --check

# The benches' native load generators: wrk posts webhooks, kcat produces change events.
bench-tools:
	command -v wrk && command -v kcat || (apt-get update && apt-get install -y wrk kcat)

bench: install bench-tools
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) .cache data .pytest_cache .ruff_cache
