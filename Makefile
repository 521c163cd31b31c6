# The two commands of the README are `make run` and `make test`; the rest are
# the developer habits of CONTRIBUTING.md.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000
# The payment sandbox (python -m paysandbox), the provider's stand-in for make run.
PAYSANDBOX_PORT ?= 8090
export HOST PORT PAYSANDBOX_PORT

# PostgreSQL and Redis on their standard loopback ports, for tests and `make serve`.
PG_URL ?= postgres://postgres@127.0.0.1:5432
# PYTHONDONTWRITEBYTECODE emptied: the suite starts hundreds of Python processes
# (servers, workers, commands); without bytecode caches each compiled every module
# it imports again, 1.6 s of CPU per start (docs/performance.md, "The test suite").
TEST_ENV := DATABASE_URL=$${TEST_DATABASE_URL:-$(PG_URL)/wechat} \
	REDIS_URL=$${TEST_REDIS_URL:-redis://127.0.0.1:6379/15} PYTHONDONTWRITEBYTECODE=
SERVE_ENV := DATABASE_URL=$${DATABASE_URL:-$(PG_URL)/wechat} \
	REDIS_URL=$${REDIS_URL:-redis://127.0.0.1:6379/0}

.PHONY: run test serve install install-dev migrate worker beat fmt lint typecheck check clean paykey

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip uv
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed
	$(BIN)/uv pip install --python $(BIN)/python -q --compile-bytecode -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# A local .env with a generated SECRET_KEY, so the embedded mode needs no set-up.
.env:
	@umask 077 && printf 'SECRET_KEY=%s\n' "$$($(PYTHON) -c 'import secrets; print(secrets.token_urlsafe(50))')" > $@
	@echo "Wrote .env with a new SECRET_KEY."

# The merchant key the product and the payment sandbox share, kept in .env (a secret:
# never on a command line).
paykey: .env
	@grep -q '^PAY_MCH_KEY=' .env || { umask 077 && printf 'PAY_MCH_KEY=%s\n' \
		"$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(16))')" >> .env \
		&& echo "Added a payment sandbox key (PAY_MCH_KEY) to .env."; }

# createdemo refuses any database but the embedded SQLite one: its accounts' passwords are published.
## run: set everything up and serve the embedded mode (SQLite, in-memory layer, in-process
## Celery), with the payment sandbox beside it (stopped with it)
run: $(VENV)/.installed .env paykey
	$(BIN)/python manage.py migrate --noinput -v0
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/python manage.py createdemo
	@mkdir -p var && { echo ""; \
	echo "Serving the embedded demo on http://$(HOST):$(PORT)/"; \
	echo "  web client   http://$(HOST):$(PORT)/"; \
	echo "  API docs     http://$(HOST):$(PORT)/api/docs/"; \
	echo "  admin        http://$(HOST):$(PORT)/admin/   (demo operator above)"; \
	echo "  monitoring   http://$(HOST):$(PORT)/monitoring/"; \
	echo "  pay sandbox  http://$(HOST):$(PAYSANDBOX_PORT)/   (the payment provider's stand-in)"; \
	echo "The demo logins above have published passwords: they exist only in this"; \
	echo "embedded SQLite database (var/db.sqlite3). For a real deployment see"; \
	echo "docs/deploy.md (make serve, createoperator)."; \
	echo ""; } > var/run-banner.txt
	@echo "Starting the server (it says \"Serving\" once it answers)…"
	$(BIN)/python -m paysandbox --host $(HOST) --port $(PAYSANDBOX_PORT) --env-file .env & \
	sandbox=$$!; trap 'kill $$sandbox 2>/dev/null' EXIT INT TERM; \
	PAY_PROVIDER_URL=$${PAY_PROVIDER_URL:-http://$(HOST):$(PAYSANDBOX_PORT)} \
		ASGI_SERVER=daphne $(BIN)/python -m wechat_core.serve --announce-file var/run-banner.txt

# The suite runs in PYTEST_WORKERS parallel processes (pytest-xdist), a test module
# per process at a time (its module fixtures start once), the longest modules first
# (tests/conftest.py); each has its own test database and Redis databases
# (tests/settings.py). PYTEST_WORKERS=0 runs it in one.
PYTEST_WORKERS ?= 2

## test: the whole suite against PostgreSQL and Redis on loopback
test: $(VENV)/.installed-dev
	@$(TEST_ENV) $(BIN)/python -m wechat_core.servicecheck
	$(TEST_ENV) $(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile --no-loadscope-reorder $(PYTEST_ARGS)

## serve: the production layout on this machine (ASGI server, Celery worker, beat)
serve: $(VENV)/.installed .env paykey
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
	$(BIN)/lint-imports  # the apps' layers (pyproject.toml, docs/architecture.md)

# mypy and the migrations check load the settings of the embedded layout (no
# service, no .env), where a placeholder SECRET_KEY is accepted.
typecheck: $(VENV)/.installed-dev
	DOTENV_FILE= REDIS_URL= SECRET_KEY=typecheck $(BIN)/mypy .

check: lint typecheck test
	DOTENV_FILE= REDIS_URL= SECRET_KEY=check $(BIN)/python manage.py makemigrations --check --dry-run

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
