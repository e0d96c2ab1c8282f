# Wuye's tasks. `make demo` and `make test` are the README's two commands.
VENV := .venv/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/wuye

.PHONY: install demo test test-pg lint ci bench

install:
	@scripts/bootstrap.sh

demo: install
	$(VENV)/wuye demo

test: install
	$(VENV)/python -m pytest $(PYTEST_ARGS)

test-pg: install
	DATABASE_URL=$(PG_URL) $(VENV)/python -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/ruff check src tests bench
	$(VENV)/mypy
	$(VENV)/wuye makemigrations --check --dry-run

ci: lint test test-pg

bench: install
	$(VENV)/python bench/run.py
