# The two commands of the README are `make run` and `make test`; the rest are
# the developer habits of CONTRIBUTING.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
export HOST PORT

# PostgreSQL and Redis on their standard loopback ports, for tests and `make serve`.
PG_URL ?= postgres://postgres@127.0.0.1:5432
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_URL)/wechat} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
SERVE_ENV := DATABASE_URL=$${DATABASE_URL:-$(PG_URL)/wechat} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0}

.PHONY: run test serve install install-dev migrate worker beat fmt lint typecheck check clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/uv pip install --python $(BIN)/python -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# A local .env with a generated SECRET_KEY, so the embedded mode needs no set-up.
.env:
	@umask 077 && printf 'SECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote .env with a new SECRET_KEY."

## run: set everything up and serve the embedded mode (SQLite, in-memory layer, in-process Celery)
run: $(VENV)/.installed .env
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py createdemo
	@echo ""
	@echo "Serving on http://$(HOST):$(PORT)/"
	@echo "  web client   http://$(HOST):$(PORT)/"
	@echo "  API docs     http://$(HOST):$(PORT)/api/docs/"
	@echo "  admin        http://$(HOST):$(PORT)/admin/   (operator login above)"
	@echo ""
	$(BIN)/python -m daphne -b $(HOST) -p $(PORT) wechat_core.asgi:application

## test: the whole suite against PostgreSQL and Redis on loopback
test: $(VENV)/.installed-dev
	@$(TEST_ENV) $(BIN)/python -m wechat_core.servicecheck
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

## serve: the production layout on this machine (ASGI server, Celery worker, beat)
serve: $(VENV)/.installed .env
	@$(SERVE_ENV) $(BIN)/python -m wechat_core.servicecheck
	$(SERVE_ENV) $(BIN)/python manage.py migrate --noinput -v0
	$(SERVE_ENV) $(BIN)/python manage.py collectstatic --noinput -v0
	rm -rf var/prometheus && mkdir -p var/prometheus  # metrics of the processes started below
	$(SERVE_ENV) PROMETHEUS_MULTIPROC_DIR=$${PROMETHEUS_MULTIPROC_DIR:-$(abspath var/prometheus)} \
		PATH="$(abspath $(BIN)):$$PATH" $(BIN)/honcho start -f Procfile

migrate: $(VENV)/.installed .env
	$(BIN)/python manage.py migrate

fmt: $(VENV)/.installed-dev
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-dev
	SECRET_KEY=typecheck $(BIN)/mypy .

check: lint typecheck test
	SECRET_KEY=check $(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
