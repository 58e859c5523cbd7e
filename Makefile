# Relay Novel: `make run` serves the app on its embedded defaults, `make test` runs every test.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
export FLASK_APP := wsgi.py

.PHONY: run run-scaled dev test lint format venv translations system-deps migrate models shakespeare clean

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.txt
	touch $@

## The interface's message catalogues, compiled from app/translations/*/LC_MESSAGES/*.po
## (the .mo files are build output, never committed); every target that runs the app needs venv.
MO_FILES := $(patsubst %.po,%.mo,$(wildcard app/translations/*/LC_MESSAGES/messages.po))
%.mo: %.po $(BIN)/.installed
	$(BIN)/pybabel compile -i $< -o $@

venv: $(BIN)/.installed $(MO_FILES)

## After changing interface text: re-extract app/translations/messages.pot, merge it into each
## language's .po (then translate what is new: tests/test_translations.py names the gaps), compile.
BABEL_EXTRACT = $(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location \
	--sort-output --project "Relay Novel" -o app/translations/messages.pot .
translations: $(BIN)/.installed
	$(BABEL_EXTRACT)
	$(BIN)/pybabel update -i app/translations/messages.pot -d app/translations \
		--no-wrap --ignore-obsolete
	$(BIN)/pybabel compile -d app/translations

migrate: venv
	$(BIN)/flask db upgrade

## Serve at http://127.0.0.1:5000 with SQLite, in-process generation and the shipped models.
run: migrate
	$(BIN)/gunicorn -c gunicorn.conf.py wsgi:server

## Scaled mode on this machine: gunicorn (WEB_CONCURRENCY workers, default 4), one Celery
## generation worker (8 jobs in one engine batch) and beat, against the local PostgreSQL and Redis; Ctrl-C stops them all.
## On GPU nodes run one worker per GPU instead (RELAY_DEVICE=cuda:N); see docs/scaling.md.
SCALED_DATABASE_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/relay
SCALED_REDIS_URL ?= redis://127.0.0.1:6379/0
SCALED_ENV = RELAY_RUN_MODE=scaled DATABASE_URL=$(SCALED_DATABASE_URL) REDIS_URL=$(SCALED_REDIS_URL)
CELERY = $(BIN)/celery -A app.runners.worker
run-scaled: venv
	createdb -h 127.0.0.1 -U postgres $(notdir $(SCALED_DATABASE_URL)) 2>/dev/null || true
	$(SCALED_ENV) $(BIN)/flask db upgrade
	trap 'kill 0' INT TERM; export $(SCALED_ENV) RELAY_WORKERS_PER_HOST=1; \
	$(CELERY) worker -n gen1@%h --pool threads --concurrency 8 --loglevel INFO & \
	$(CELERY) beat --loglevel INFO --schedule instance/celerybeat-schedule & \
	WEB_CONCURRENCY=$${WEB_CONCURRENCY:-4} $(BIN)/gunicorn -c gunicorn.conf.py --no-control-socket \
		wsgi:server & \
	wait

## Flask's debug server (auto-reload), same defaults.
dev: migrate
	$(BIN)/flask run --debug --with-threads --host 127.0.0.1 --port 5000

## Debian packages the browser tests need (Chromium, and CJK fonts for the Korean pages),
## epubcheck for the EPUB export's test, and nginx (the rate-limiting gateway of the remote
## tests); skipped when already present.
system-deps:
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi "Noto Sans CJK" \
		&& test -e /usr/bin/epubcheck && test -x /usr/sbin/nginx || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium \
		fonts-noto-cjk epubcheck nginx-light >/dev/null; }

## axe-core, from the npm registry, for the browser tests' accessibility check
## (tests/browser/test_axe.py injects it into every page); pinned, into build/ (ignored).
AXE_VERSION := 4.14.1
AXE := build/node/.axe-core-$(AXE_VERSION)
$(AXE):
	npm install --prefix build/node --no-audit --no-fund --loglevel=error axe-core@$(AXE_VERSION)
	touch $@

## Everything: lint, then the whole suite on SQLite and PostgreSQL, browser tests in Chromium.
test: venv system-deps $(AXE)
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

## Retrain the shipped models/default-en and models/default-ko, one torch thread each, both
## at once, from scratch on each language's fiction alone (the training split of en/ and
## ko/), EN_STEPS and KO_STEPS steps (~100 min on one core each): the budgets of the
## two-stage recipes (pre-train on the fiction plus en-extra/ or ko-wiki/, then fine-tune;
## docs/workshop.md) that they beat on the same validation text (English 1.6745 vs 1.7100
## bits/char, 2026-12-03; Korean 3.6685 vs 4.1696, 2026-12-04). Window 512. Then each model
## is evaluated into its card (LSTM baseline LSTM_MINUTES) and its story cache fitted.
## MODELS_OUT=build/new writes elsewhere than models/.
CORPORA ?= ../shared/corpora
MODELS_OUT ?= models
LSTM_MINUTES ?= 10
EN_STEPS ?= 1713
KO_STEPS ?= 1712
MODEL_TRAIN = $(BIN)/flask model train --context 512 --batch 8 --eval-every 100 --seed 1337 \
	--threads 1
FICTION_ONLY = $(MODEL_TRAIN) --vocab-size 8192 --layers 6 --width 256 --heads 4 --dropout 0.1 \
	--lr 1e-3 --warmup 200 --minutes 0
MODEL_EVAL = $(BIN)/flask model eval --baselines --lstm-minutes $(LSTM_MINUTES) --samples 20 \
	--threads 1
models: venv
	$(FICTION_ONLY) --max-steps $(EN_STEPS) --corpus $(CORPORA)/en --out $(MODELS_OUT)/default-en \
		--card-notes app/workshop/card_notes/default-en.md & en=$$!; \
	$(FICTION_ONLY) --max-steps $(KO_STEPS) --corpus $(CORPORA)/ko --out $(MODELS_OUT)/default-ko \
		--card-notes app/workshop/card_notes/default-ko.md & ko=$$!; \
	wait $$en && wait $$ko
	$(MODEL_EVAL) --model $(MODELS_OUT)/default-en --corpus $(CORPORA)/en & en=$$!; \
	$(MODEL_EVAL) --model $(MODELS_OUT)/default-ko --corpus $(CORPORA)/ko & ko=$$!; \
	wait $$en && wait $$ko
	$(BIN)/flask model fit-cache --model $(MODELS_OUT)/default-en --corpus $(CORPORA)/en
	$(BIN)/flask model fit-cache --model $(MODELS_OUT)/default-ko --corpus $(CORPORA)/ko

## Workshop example (docs/workshop.md): a character-level GPT on tiny Shakespeare, last 10%
## as validation, 58 minutes on both cores; writes SHAKESPEARE_OUT and prints its bits/char.
SHAKESPEARE_OUT ?= /tmp/shakespeare-char
shakespeare: venv
	mkdir -p /tmp/shakespeare-corpus
	cp $(CORPORA)/shakespeare/shakespeare-tinyshakespeare.txt /tmp/shakespeare-corpus/
	$(BIN)/flask model train --corpus /tmp/shakespeare-corpus --out $(SHAKESPEARE_OUT) \
		--tokenizer-kind char --vocab-size 256 --layers 6 --width 192 --heads 6 --context 256 \
		--dropout 0.1 --batch 16 --lr 1.5e-3 --warmup 100 --minutes 58 --eval-every 250 --threads 2 \
		--no-clean
	$(BIN)/flask model eval --model $(SHAKESPEARE_OUT) --corpus /tmp/shakespeare-corpus \
		--baselines --lstm-minutes 0 --samples 5 --threads 2 --no-clean
