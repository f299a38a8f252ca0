# Apache Spot ingest on Airflow 3. The two commands a new user needs: `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
ENV := . scripts/env.sh &&

.PHONY: help setup stack-up stack-down stack-status stack-restart demo test test-unit test-integration lint schema bench

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

setup: ## install Debian packages, the Python venv and the stack's jars (idempotent)
	scripts/setup.sh

stack-up: setup ## start Kafka, HDFS, Hive metastore, HiveServer2 and Airflow (idempotent)
	scripts/stack.sh up

stack-down: ## stop every stack service (idempotent)
	scripts/stack.sh down

stack-status: ## each service, its pid, port and health
	scripts/stack.sh status

stack-restart: setup ## stop and start the stack
	scripts/stack.sh restart

demo: stack-up ## set everything up, generate sample data, collect and load it into Hive, print a report
	$(ENV) scripts/demo.sh

test: setup ## set everything up, start the stack, run all tests, stop the stack
	scripts/run_tests.sh

test-unit: setup ## pure-logic tests only (no stack needed)
	$(ENV) pytest -q tests/unit

test-integration: ## integration and DAG tests against a running stack (make stack-up)
	$(ENV) pytest -q tests/integration tests/dags

lint: ## ruff (including Airflow's AIR rules) and mypy
	$(ENV) ruff check dags plugins include tests scripts && ruff format --check dags plugins include tests scripts && mypy plugins tests

schema: ## regenerate include/schemas/ingest_conf.schema.json from the config model
	$(ENV) PYTHONPATH=plugins python -m spot_operators.config --write-schema

bench: stack-up ## throughput (collect vs nfdump; listener vs plain Kafka->Parquet) and latency; needs ../shared/data
	$(ENV) python scripts/bench_flow.py && python scripts/bench_listener.py && python scripts/bench_latency.py
