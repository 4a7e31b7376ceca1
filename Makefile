# Two commands do all set-up on a fresh machine:
#   make run    installs Beacon and runs it embedded (SQLite file + simulated network)
#   make test   installs what the tests need (incl. Chromium) and runs every test
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint audit-deps audit-deps-newest install install-test browser clean

run: install
	$(BIN)/python app.py

test: install-test browser
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest -n 2 --dist loadgroup $(PYTEST_ARGS)

# Known vulnerabilities in the installed dependencies (needs the PyPI/OSV services online).
audit-deps: install-test
	$(BIN)/pip-audit --strict --progress-spinner off

# Where PyPI serves only project-level JSON: advisories for what is at its newest release.
audit-deps-newest: install-test
	$(BIN)/python tools/audit_deps.py

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

# setuptools is upgraded with pip: dash imports it at run time, and a new venv's is old.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip setuptools
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@

# Browser tests drive Debian's Chromium; install it when it is missing.
browser:
	@if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache test-artifacts
