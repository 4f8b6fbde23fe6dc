# The two commands of the README: `make run` and `make test`. Both set up from nothing.
# `make bench [ARGS=...]` runs the benchmark suite (benchmarks/README.md).
# `make test` runs the suite in a process per core (pytest-xdist, see pyproject.toml); extra pytest
# options go in PYTEST_ARGS, e.g. `make test PYTEST_ARGS="-n 0 tests/test_blog.py"` for one process.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 5000

.PHONY: run test bench install clean-venv

# The stamp files hold the install: it is redone only when pyproject.toml changes.
$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit("blogapp needs Python 3.11 or newer, found " + sys.version.split()[0]) if sys.version_info < (3, 11) else None'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@ $(VENV)/.installed-run

$(VENV)/.installed-prod: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[prod]'
	@touch $@ $(VENV)/.installed-run

install: $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/flask --app blogapp init-db
	$(BIN)/flask --app blogapp seed-demo --if-empty
	@echo "Serving the blog at http://$(HOST):$(PORT)/ (Ctrl+C stops it)"
	$(BIN)/flask --app blogapp run --host $(HOST) --port $(PORT)

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# Prints figures and writes benchmarks/results/; needs wrk (the script installs it as root, or says how).
bench: $(VENV)/.installed-prod
	$(BIN)/python benchmarks/bench.py $(ARGS)

clean-venv:
	rm -rf $(VENV)
