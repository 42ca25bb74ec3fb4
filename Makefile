# The two set-up commands of the README: `make demo` and `make test`.
#
# The test environment is pinned by requirements-test.txt (pip-compile of the
# test, postgres and lint extras), so a fresh machine tests exactly what the
# developers tested. `make test-latest` runs the suite against the newest
# releases allowed by pyproject.toml instead; `make lock` refreshes the pins.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml requirements-test.txt | cksum | cut -d' ' -f1)
LATEST_VENV ?= .venv-latest
LINT_PATHS := migration_guard tests bench docs examples

.PHONY: demo test test-latest lint type bench services services-stop clean install docs lock

$(STAMP): pyproject.toml requirements-test.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-test.txt
	$(PY) -m pip install --quiet --no-deps -e .
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: $(STAMP)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" bash examples/demo.sh

services:
	bash .ci/services

services-stop:
	bash .ci/services stop

test: $(STAMP) services
	$(PY) -m pytest -n 2 -p no:cacheprovider

# The newest releases within the ranges pyproject.toml declares: what a
# library user gets from `pip install migration-guard` today.
test-latest: services
	test -x $(LATEST_VENV)/bin/python || $(PYTHON) -m venv $(LATEST_VENV)
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LATEST_VENV)/bin/python -m pip install --quiet --upgrade --upgrade-strategy eager -e '.[test,postgres]'
	$(LATEST_VENV)/bin/python -m pytest -n 2 -p no:cacheprovider

lint: $(STAMP)
	$(PY) -m ruff check $(LINT_PATHS)
	$(PY) -m ruff format --check $(LINT_PATHS)
	$(VENV)/bin/lint-imports
	$(PY) -m mypy

lock: $(STAMP)
	$(PY) -m pip install --quiet pip-tools
	$(VENV)/bin/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
		--extra test --extra postgres --extra lint -o requirements-test.txt pyproject.toml

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[bench]'
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) $(LATEST_VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info

docs: $(STAMP)
	$(PY) docs/gen_cli.py > docs/cli.md
