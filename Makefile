VENV ?= .venv
PY = $(VENV)/bin/python
# Prefer python3.11 (the minimum supported version) when it is installed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)

.PHONY: install test lint format type demo bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,fast,metrics]'
	touch $@

install: $(VENV)/.installed

test: $(VENV)/.installed
	$(VENV)/bin/ruff check resq resq_scheduler tests
	$(VENV)/bin/ruff format --check resq resq_scheduler tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy resq resq_scheduler
	$(VENV)/bin/mypy --strict tests/typing
	$(VENV)/bin/pytest -q -p no:cacheprovider

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check resq resq_scheduler tests
	$(VENV)/bin/ruff format --check resq resq_scheduler tests bench examples
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff format resq resq_scheduler tests bench examples

type: $(VENV)/.installed
	$(VENV)/bin/mypy resq resq_scheduler
	$(VENV)/bin/mypy --strict tests/typing

demo: $(VENV)/.installed
	$(PY) -m examples.demo

bench: $(VENV)/.installed
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .tox
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
