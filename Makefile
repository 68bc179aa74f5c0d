# The verbs people expect. `make run` and `make test` install what is missing first.
PYTHON ?= .venv/bin/python

.PHONY: install run test lint fmt typecheck bench e2e

install:
	./scripts/bootstrap.sh

run: install
	$(PYTHON) manage.py studio

test:
	./scripts/test.sh

lint: install
	$(PYTHON) -m ruff check .
	$(PYTHON) -m ruff format --check .

fmt: install
	$(PYTHON) -m ruff format .
	$(PYTHON) -m ruff check --fix .

typecheck: install
	$(PYTHON) -m mypy apps studio workers

bench: install
	$(PYTHON) tests/bench/run_all.py

e2e: install
	$(PYTHON) -m pytest -m e2e
