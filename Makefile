# Two commands set everything up on a fresh machine: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
PYTEST_ARGS ?=
# One pytest process per usable core, at most 4 (pytest-xdist); each file's tests stay in one process, in
# order. Each process has its own database, connection pool and Celery worker (2 processes peaked at 10
# PostgreSQL connections; its default limit is 100), and more than 4 were never tried.
# PYTEST_WORKERS=0 runs the suite in this process.
PYTEST_WORKERS ?= $(shell python3 -c 'import os; print(min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()))')

.PHONY: run test venv services-up sdk clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	# The CPU build of torch first (a looser pin would pull a multi-GB CUDA build).
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[test]"
	touch $@

venv: $(VENV)/.installed

run: venv
	$(VENV)/bin/atelier db upgrade
	$(VENV)/bin/atelier serve --host $(HOST) --port $(PORT) --admin-key --demo

services-up:
	bash deploy/ensure-services.sh

test: venv services-up
	$(VENV)/bin/pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

# The generated Python SDK (sdk/atelier-client), from the gateway's merged OpenAPI; commit the result.
sdk: venv
	$(PY) -m services.gateway.openapi_export sdk/openapi.json
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/openapi-python-client generate --path sdk/openapi.json \
		--output-path sdk/atelier-client --overwrite --meta pdm --config sdk/config.yaml

clean:
	rm -rf $(VENV) .atelier .pytest_cache
