# Wuye's tasks. `make demo` and `make test` are the README's two commands.
#   make demo DEMO_ARGS="--reset --units 3000"     make test PYTEST_ARGS="-k fee_for -x"
VENV := .venv/bin
PG_URL ?= postgres://postgres@127.0.0.1:5432/wuye
DEMO_ARGS ?=
PYTEST_ARGS ?=

.PHONY: install demo serve test test-pg lint ci bench clean

install:
	@scripts/bootstrap.sh

demo: install
	$(VENV)/wuye demo $(DEMO_ARGS)

serve: install
	$(VENV)/wuye serve

# scripts/pytest.sh turns "no tests collected" (pytest exit 5) into a failure.
test: install
	@scripts/pytest.sh $(PYTEST_ARGS)

test-pg: install
	DATABASE_URL=$(PG_URL) scripts/pytest.sh $(PYTEST_ARGS)

lint: install
	$(VENV)/ruff check src tests bench
	$(VENV)/mypy
	$(VENV)/wuye makemigrations --check --dry-run

ci:
	.ci/run

bench: install
	$(VENV)/python bench/run.py

clean:
	rm -rf var/static .pytest_cache .mypy_cache .ruff_cache
