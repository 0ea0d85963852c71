# CloudOps: `make up` runs the whole platform, `make test` runs every check. See README.md.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PROJECTS := pyproject.toml uv.lock libs/common/pyproject.toml $(wildcard services/*/pyproject.toml)

.PHONY: up down deploy test lint typecheck servers seed bench clean

$(STAMP): $(PROJECTS)
	@command -v uv >/dev/null 2>&1 || python3 -m pip install --quiet uv
	uv sync --locked --compile-bytecode
	@touch $@

## Run the whole platform in the foreground (Ctrl-C stops it); builds the dashboard when it changed.
up: $(STAMP)
	$(BIN)/python scripts/platformctl.py up

## Stop a platform started by `make up` (from another terminal).
down:
	@if [ -x $(BIN)/python ]; then $(BIN)/python scripts/platformctl.py down; else echo "nothing is running"; fi

## Blue/green redeploy of the running platform: the other stack starts, nginx switches, the old stops.
deploy: $(STAMP)
	$(BIN)/python scripts/platformctl.py deploy

## PostgreSQL, Redis and RabbitMQ answering (started or installed when local), nginx installed.
servers: $(STAMP)
	$(BIN)/python scripts/platformctl.py servers

seed: $(STAMP)
	$(BIN)/python scripts/platformctl.py seed

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy libs services scripts tests bench

## Lint, types, the dashboard's unit tests, then the whole suite against the real servers (the
## dashboard's browser tests included), with coverage. pytest runs last: its summary closes the output.
test: servers lint typecheck
	$(BIN)/python scripts/platformctl.py dashboard-test
	$(BIN)/pytest --cov --cov-report=term --cov-fail-under=90

bench: $(STAMP)
	$(BIN)/python -m bench.resources_bench

clean:
	rm -rf $(VENV) run .coverage .coverage.* .mypy_cache .ruff_cache .pytest_cache
