# KetaSafe: the two commands a new user needs (see README.md).
#   make demo   install and run the demo clinic (SQLite, web + MLLP listener + simulated monitors)
#   make test   install test dependencies and run every test (browser tests included)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test test-quick lint install install-test browser

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

# Playwright drives Debian's chromium; its own browser download does not work offline.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests..."; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium; fi; }

demo: install
	$(BIN)/ketasafe demo

test: install-test browser
	$(BIN)/pytest

# The quick local loop: everything but the browser tests.
test-quick: install-test
	$(BIN)/pytest -m "not browser"

lint: install-test
	$(BIN)/ruff check src benchmarks
	$(BIN)/mypy src/ketasafe
	$(BIN)/ketasafe makemigrations --check --dry-run
