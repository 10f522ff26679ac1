# The two Quickstart commands are `make demo` and `make test`; both install everything first.
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
PYTEST_ARGS ?=

.PHONY: install demo test lint format dev clean-state

$(STAMP): pyproject.toml requirements.lock
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip -c requirements.lock setuptools  # the venv bootstrap setuptools is old (CVEs, SECURITY.md)
	$(PY) -m pip install -q -c requirements.lock -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  ## run the main job end to end on the embedded default
	$(VENV)/bin/mlops demo

test: $(STAMP)  ## lint, format check and the whole test suite
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

dev: $(STAMP)  ## dagster dev (UI + daemon) on the project-local instance
	$(VENV)/bin/mlops dev

clean-state:
	rm -rf .state
