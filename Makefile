# Two commands for a new user: `make run` (server + demo data) and `make test`.
# Both create the virtualenv on first use and reinstall when pyproject.toml changes.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: run test lint install clean

install: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

# GraphiQL's browser assets (app/graphiql.py) and the API audit's graphql-http, pinned
# with their hashes in package-lock.json (`npm ci` checks them). Without npm the
# server still runs; its GraphiQL page then says how to install them.
node_modules/.installed: package.json package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
		npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && touch $@; \
	else \
		echo "npm not found: GraphiQL's assets are not installed (see README, GraphiQL)"; \
	fi

run: install
	$(BIN)/sunrank serve --demo

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache node_modules
