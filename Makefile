# The two commands a newcomer needs: `make run` and `make test`. Both set up everything
# they need (a virtualenv in .venv, the Python packages, buf from npm) on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
BUF := node_modules/.bin/buf

.PHONY: setup services run test lint protos check-protos bench clean

$(STAMP): pyproject.toml clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e clients/python -e '.[dev]'
	touch $@

# Not `npm ci`: the registry serves buf's binaries for some platforms at an older version, so
# the lock file lists only the ones it could resolve and `npm ci` refuses it as out of sync.
# `--no-save` installs exactly the locked versions and leaves the lock file untouched.
$(BUF): package.json package-lock.json
	npm install --no-save --no-audit --no-fund --loglevel=error
	touch $@

setup: $(STAMP) $(BUF)

## Redis on 127.0.0.1:6379 and h2load: installed from Debian's packages when missing, Redis started.
services:
	bash tests/services.sh

## Start the gateway on the built-in emulator and show a real call answered (Ctrl-C stops it).
run: $(STAMP)
	$(BIN)/gateway serve --emulator --demo

## Everything CI checks: lint, types, proto lint, generated code fresh, the test suite.
test: setup services lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	cd protos && ../$(BUF) lint
	BUF=../$(BUF) bash protos/breaking.sh

## Regenerate every client's code from protos/ (commit the result).
protos: $(STAMP)
	$(BIN)/python clients/generate.py

## Load and soak benchmarks (not part of `make test`).
bench: setup services
	$(BIN)/python -m tests.bench.run_all

clean:
	rm -rf $(VENV) node_modules .mypy_cache .ruff_cache
