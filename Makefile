# pgkeel's two commands: `make demo` (the main job) and `make test` (every check).
# Both create .venv with pip and install what they need; `make bench` runs the benchmarks.

# The pgserver wheel (PostgreSQL for machines with none) exists for Python <= 3.12: prefer those.
PYTHON ?= $(shell for p in python3.12 python3.11 python3; do \
	$$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1 && \
	{ echo $$p; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.pgkeel-installed
PYTEST_WORKERS ?= 2

# `make lowest`: the lowest allowed version of every direct dependency, in its own environment.
LOWEST := .venv-lowest
LOWEST_TESTS := tests/floors tests/models tests/isolation/test_soft_delete.py \
	tests/isolation/test_tenancy.py tests/alembic/test_alembic_revisions.py

.PHONY: demo test lint typecheck pytest lowest bench system-deps clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(or $(PYTHON),$(error pgkeel needs Python >= 3.11 on PATH)) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,embedded,testcontainers]'
	touch $@

system-deps: $(STAMP)
	bash scripts/system-deps.sh $(BIN)/python all

demo: $(STAMP)
	bash scripts/system-deps.sh $(BIN)/python server
	$(BIN)/python scripts/demo.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) system-deps
	$(BIN)/pytest -n $(PYTEST_WORKERS)

lowest: $(STAMP) system-deps
	rm -rf $(LOWEST)
	$(BIN)/uv venv -q --python $(BIN)/python $(LOWEST)
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install -q --resolution lowest-direct -e '.[alembic]'
	VIRTUAL_ENV=$(LOWEST) $(BIN)/uv pip install -q pytest pytest-xdist hypothesis ruff
	PGKEEL_EXPECT_FLOORS=1 $(LOWEST)/bin/pytest -n $(PYTEST_WORKERS) -q -p no:cacheprovider $(LOWEST_TESTS)

test: lint typecheck pytest lowest

# The bench runs in an environment of its own: pgkeel beside the peers it is measured against
# (bench-only dependencies). sqlalchemy-easy-softdelete needs SQLAlchemy < 2.1 and pgkeel needs
# >= 2.1: its environment (.venv-bench-sa20) holds the peer without pgkeel, and the reads
# benchmark compares each with the same hand-written reads on its own SQLAlchemy.
.venv-bench/.installed: pyproject.toml bench/requirements-peers.txt
	test -x $(@D)/bin/python || $(or $(PYTHON),$(error pgkeel needs Python >= 3.11 on PATH)) -m venv $(@D)
	$(@D)/bin/python -m pip install -q --upgrade pip
	$(@D)/bin/python -m pip install -q -e '.[dev]' -r bench/requirements-peers.txt
	touch $@

.venv-bench-sa20/.installed: bench/requirements-sqlalchemy20.txt
	test -x $(@D)/bin/python || $(or $(PYTHON),$(error pgkeel needs Python >= 3.11 on PATH)) -m venv $(@D)
	$(@D)/bin/python -m pip install -q --upgrade pip
	$(@D)/bin/python -m pip install -q -r bench/requirements-sqlalchemy20.txt
	touch $@

bench: $(STAMP) system-deps .venv-bench/.installed .venv-bench-sa20/.installed
	.venv-bench/bin/python -m bench

clean:
	rm -rf $(VENV) $(LOWEST) build dist .mypy_cache .ruff_cache .pytest_cache .hypothesis
