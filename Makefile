# Relay Novel: `make run` serves the app on its embedded defaults, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py

.PHONY: run dev test lint format venv system-deps migrate models clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

venv: $(BIN)/.installed

migrate: venv
	$(BIN)/flask db upgrade

## Serve at http://127.0.0.1:5000 with SQLite, in-process generation and the shipped models.
run: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:app

## Flask's debug server (auto-reload), same defaults.
dev: migrate
	$(BIN)/flask run --debug --with-threads --host 127.0.0.1 --port 5000

## Debian packages the browser tests need (Chromium); skipped when already present.
system-deps:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

## Everything: lint, then the whole suite on SQLite and PostgreSQL, browser tests in Chromium.
test: venv system-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) instance .pytest_cache .ruff_cache
