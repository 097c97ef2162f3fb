# Two commands set up everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test test-mongodb migrate collectstatic lint bench bench-done superuser clean

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

# Serve HTTP, WebSocket and the console with Daphne on $$PORT (3000). DEBUG is on unless you set it.
# collectstatic gathers the admin's, the API docs' and the console's files (hashed, compressed) for WhiteNoise.
run: $(STAMP)
	DEBUG=$${DEBUG-1} $(PY) manage.py migrate --noinput
	DEBUG=$${DEBUG-1} $(PY) manage.py collectstatic --noinput --verbosity 0
	DEBUG=$${DEBUG-1} $(PY) -m server.serve

migrate: $(STAMP)
	DEBUG=$${DEBUG-1} $(PY) manage.py migrate --noinput

collectstatic: $(STAMP)
	DEBUG=$${DEBUG-1} $(PY) manage.py collectstatic --noinput

superuser: $(STAMP)
	DEBUG=$${DEBUG-1} $(PY) manage.py createsuperuser

test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

# The whole suite against a throw-away MongoDB server (SecantusDB, installed outside .venv; docs/mongodb.md),
# stopped afterwards even when tests fail. MONGODB_TOPOLOGY=replicaset (default; transactions) or standalone.
MONGODB_TOPOLOGY ?= replicaset
test-mongodb: $(STAMP)
	$(if $(filter-out replicaset standalone,$(MONGODB_TOPOLOGY)),$(error MONGODB_TOPOLOGY must be replicaset or standalone))
	scripts/mongo-test-server run $(if $(filter standalone,$(MONGODB_TOPOLOGY)),--standalone) -- \
		$(PY) -m pytest $(PYTEST_ARGS)

# ruff, then mypy (strict, with django-stubs and pydantic's plugin) on all non-test code. The plugin loads the
# settings, so it runs with DEBUG on (no secret needed).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	DEBUG=1 $(VENV)/bin/mypy .

bench: $(STAMP)
	$(PY) bench/live_bench.py $(BENCH_ARGS)

# DONE for 1,000 students on SQLite and, with BENCH_ARGS=--mongodb, on SecantusDB (both topologies), in one run.
bench-done: $(STAMP)
	$(PY) bench/done_bench.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles
