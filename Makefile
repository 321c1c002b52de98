VENV ?= .venv
PY = $(VENV)/bin/python
# Prefer python3.11 (the minimum supported version) when it is installed.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)

.PHONY: install test chaos lint format type docs demo bench peers-env clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,fast,metrics,crypto,web]'
	touch $@

install: $(VENV)/.installed

# node-resque from npm, for the Resque interop tests (tests/interop): `npm ci` from the lock file.
INTEROP_NODE = tests/interop/node
$(INTEROP_NODE)/node_modules/.installed: $(INTEROP_NODE)/package-lock.json
	cd $(INTEROP_NODE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

test: $(VENV)/.installed $(INTEROP_NODE)/node_modules/.installed
	$(VENV)/bin/ruff check resq resq_scheduler tests
	$(VENV)/bin/ruff format --check resq resq_scheduler tests bench examples
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy resq resq_scheduler
	$(VENV)/bin/mypy --strict tests/typing
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict -q
	$(VENV)/bin/pytest -q -p no:cacheprovider -n auto

# The chaos suite at full size (thousands of jobs per fault), and the property tests with more examples;
# `make test` runs the same scenarios short.
chaos: $(VENV)/.installed
	RESQ_CHAOS=full $(VENV)/bin/pytest -q -p no:cacheprovider -m chaos tests/chaos
	RESQ_CHAOS=full $(VENV)/bin/pytest -q -p no:cacheprovider tests/property

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check resq resq_scheduler tests
	$(VENV)/bin/ruff format --check resq resq_scheduler tests bench examples
	$(VENV)/bin/lint-imports

format: $(VENV)/.installed
	$(VENV)/bin/ruff format resq resq_scheduler tests bench examples

type: $(VENV)/.installed
	$(VENV)/bin/mypy resq resq_scheduler
	$(VENV)/bin/mypy --strict tests/typing

# The docs site (mkdocs.yml): docs/*.md and an API reference from the docstrings, built into site/.
# --strict fails on a broken link or anchor and on a docstring griffe cannot parse.
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

demo: $(VENV)/.installed
	$(PY) -m examples.demo

# The peer benchmark's own environments (bench/.peers-venv*, bench/peers/bullmq/node_modules); the smoke test
# in tests/test_bench_smoke.py builds them on demand too.
peers-env: $(VENV)/.installed
	$(PY) bench/peers/envs.py

bench: $(VENV)/.installed peers-env
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .tox
	rm -rf bench/.peers-venv bench/.peers-venv-arq bench/peers/bullmq/node_modules
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
