# Run `make help` for the targets. Everything sets itself up on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
LANDING ?=
DATE ?=
FROM ?=
QUICK ?=
export PYTHONDONTWRITEBYTECODE := 1

.DEFAULT_GOAL := help
.PHONY: help setup run test test-fast lint format bench backfill airflow api clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info[:2] in ((3, 11), (3, 12)) else "Python 3.11 or 3.12 is required (found %d.%d)" % sys.version_info[:2])'
	@command -v java >/dev/null || [ -n "$$JAVA_HOME" ] || { echo "Java 17+ is required by Spark: install it (Debian/Ubuntu: sudo apt-get install openjdk-17-jre-headless; macOS: brew install openjdk@17) and put java on PATH or set JAVA_HOME." >&2; exit 1; }
	@test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	@$(PY) -c 'from shopml.spark import require_java; require_java()'
	@touch $(STAMP)

setup: $(STAMP) ## Create .venv and install the pinned dependency set

# Tests start their own throwaway redis-server and drive Debian's chromium; install them when missing and possible.
SYSTEM_STAMP := $(VENV)/.system-deps
$(SYSTEM_STAMP): $(STAMP)
	@missing=""; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing$$missing (Debian packages) for the tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else echo "note: missing$$missing; set REDIS_URL to a Redis you own, and install chromium for the report's browser test" >&2; fi; \
	fi
	@touch $@

run: $(STAMP) ## Run the nightly pipeline through Airflow on sample data (LANDING=dir to use your own, DATE=YYYY-MM-DD)
	$(PY) -m sample_shop.run $(if $(LANDING),--landing $(LANDING)) $(if $(DATE),--date $(DATE))

# Two workers, one test file each at a time (module fixtures are built once): the DAG tests wait on
# Airflow and Spark subprocesses, and the other worker uses that time. The file order puts the two
# longest files (tests/dags) on different workers first.
TEST_WORKERS ?= 2

test: $(STAMP) $(SYSTEM_STAMP) ## Run the whole test suite (slow tests included; TEST_WORKERS=0 for one process)
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder --durations=15

test-fast: $(STAMP) ## Run the tests not marked slow
	$(PY) -m pytest -m "not slow"

lint: $(STAMP) ## ruff check + format check
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP) ## Apply ruff fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: $(STAMP) ## Run every benchmark in bench/ (QUICK=1 for smoke sizes); figures in bench/results/
	$(PY) -m bench $(if $(QUICK),--quick)

backfill: $(STAMP) ## Rerun one past day (DATE=YYYY-MM-DD) or a range (FROM=… DATE=…) through the nightly DAG
	@test -n "$(DATE)" || { echo "usage: make backfill DATE=YYYY-MM-DD [FROM=YYYY-MM-DD]" >&2; exit 2; }
	$(PY) -m shopml.airflow_env test nightly_retrain $(DATE) '{"backfill_from": "$(or $(FROM),$(DATE))"}'

airflow: $(STAMP) ## Start the Airflow UI (airflow standalone) with this project's DAGs
	$(PY) -m shopml.airflow_env standalone

api: $(STAMP) ## Start the storefront read API on http://127.0.0.1:8000
	$(VENV)/bin/uvicorn serving.api:app --host 127.0.0.1 --port 8000 --limit-concurrency 512

clean: ## Remove generated state under ./var (keeps .venv)
	rm -rf var
