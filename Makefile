# Everything runs from the project's own .venv; only python3 (>= 3.11) and make are needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export XDG_RUNTIME_DIR ?= $(CURDIR)/.pickwise/run

.PHONY: install run test lint typecheck dist wheel-smoke migration bench bench-quick soak clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(BIN)/pickwise serve --seed-demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

test: $(STAMP) lint typecheck wheel-smoke
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(BIN)/pytest

# The sdist, and the wheel built from it (as pip would): templates, static files and
# migrations travel inside as package data.
dist: $(STAMP)
	rm -rf dist
	$(BIN)/python -m build --outdir dist .

# The wheel installed with pip into a fresh virtualenv outside the checkout and run from an
# empty folder: migrate, import, serve, log in, rate over the API, export, report.
wheel-smoke: dist
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	PICKWISE_WHEEL=$$(ls dist/*.whl) $(BIN)/pytest -m slow -p no:cacheprovider tests/packaging

# A new Alembic revision from the models' changes: make migration m="add a column"
migration: $(STAMP)
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	$(BIN)/alembic -c migrations/alembic.ini revision --autogenerate -m "$(m)"

bench: $(STAMP)
	$(BIN)/python -m bench all

bench-quick: $(STAMP)
	$(BIN)/python -m bench all --quick

# The heavy load run (600 raters), then the crash tests; each prints its figures and saves them
# to .pickwise-test/reliability/<test>/figures.json (docs/reliability.md quotes them).
soak: $(STAMP)
	@mkdir -p $(XDG_RUNTIME_DIR) && chmod 700 $(XDG_RUNTIME_DIR)
	PICKWISE_SOAK=1 $(BIN)/pytest -m slow -s -p no:cacheprovider tests/reliability
	$(BIN)/pytest -s -p no:cacheprovider tests/reliability/test_crash.py

clean:
	rm -rf $(VENV) .pickwise-test .pytest_cache .mypy_cache .ruff_cache dist build
