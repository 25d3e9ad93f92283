# StackWatch: `make run` starts the service with a simulated plant; `make test` checks everything.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: run test lint bench servers clean dashboards dashboard-example

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# grafana-client's urllib3-future replaces urllib3 for the whole venv unless built this way.
$(STAMP): $(BIN)/python pyproject.toml
	URLLIB3_NO_OVERRIDE=1 $(BIN)/pip install --quiet --no-binary urllib3-future -e '.[dev,grafana]'
	rm -f $(VENV)/.installed-* && touch $@

run: $(STAMP)
	$(BIN)/stackwatch run --demo

servers:
	@./.ci/ensure-servers.sh

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	$(BIN)/stackwatch dashboards build --check

dashboards: $(STAMP)
	$(BIN)/stackwatch dashboards build

dashboard-example: $(STAMP) servers
	STACKWATCH_DASHBOARD_PNG=docs/dashboard-stack-detail.png $(BIN)/pytest tests/dashboards/test_queries.py -k renders

test: $(STAMP) servers lint
	$(BIN)/pytest --durations=25

bench: $(STAMP) servers
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache
