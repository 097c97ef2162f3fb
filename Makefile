# Two commands set up everything on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# One stamp per lock (requirements/): `make run` installs the server's packages only; `make test`, `lint` and
# the benchmarks the dev lock, the same packages at the same versions plus the tools. Each installs once, again
# only when its lock changes. Every package is pinned with its hashes (scripts/check-locks writes the locks).
SERVER_STAMP := $(VENV)/.server-installed
STAMP := $(VENV)/.dev-installed
PIP_INSTALL := $(PY) -m pip install --quiet --require-hashes

.PHONY: native run test test-fast test-mongodb migrate collectstatic lint bench bench-done bench-http bench-send-floor superuser clean

$(SERVER_STAMP): requirements/server.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements/server.txt
	touch $@

# dev.txt holds every package of server.txt at its version: installing it installs the server's too.
$(STAMP): requirements/dev.txt requirements/server.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP_INSTALL) -r requirements/dev.txt
	touch $@ $(SERVER_STAMP)

# The native broadcast fan-out (server/fanout.c), built in place when its source is newer than the module. Optional:
# without a compiler it warns and the server writes broadcasts from Python (server/build_native.py).
native: $(SERVER_STAMP)
	@$(PY) -m server.build_native

# Serve HTTP, WebSocket and the console with Daphne on $$PORT (3000). DEBUG is on unless you set it.
# server.prepare migrates and gathers the admin's, the API docs' and the console's files (hashed, compressed)
# for WhiteNoise, once however many `make run` start together, and collects again only when they changed.
run: $(SERVER_STAMP) native
	DEBUG=$${DEBUG-1} $(PY) -m server.prepare
	DEBUG=$${DEBUG-1} $(PY) -m server.serve

migrate: $(SERVER_STAMP)
	DEBUG=$${DEBUG-1} $(PY) -m server.prepare --only migrate

collectstatic: $(SERVER_STAMP)
	DEBUG=$${DEBUG-1} $(PY) -m server.prepare --only static --force

superuser: $(SERVER_STAMP)
	DEBUG=$${DEBUG-1} $(PY) manage.py createsuperuser

test: $(STAMP) native
	$(PY) -m pytest $(PYTEST_ARGS)

# The tests that start no process (no Daphne, Redis, PostgreSQL or MongoDB server, no browser): pytest.ini's
# markers name the others. Redis on 127.0.0.1:6379 is used when it is there, skipped when it is not.
test-fast: $(STAMP) native
	$(PY) -m pytest -m "not wire and not browser and not fuzz" $(PYTEST_ARGS)

# The whole suite against a throw-away MongoDB server (SecantusDB, installed outside .venv; docs/mongodb.md),
# stopped afterwards even when tests fail. MONGODB_TOPOLOGY=replicaset (default; transactions) or standalone.
MONGODB_TOPOLOGY ?= replicaset
test-mongodb: $(STAMP) native
	$(if $(filter-out replicaset standalone,$(MONGODB_TOPOLOGY)),$(error MONGODB_TOPOLOGY must be replicaset or standalone))
	scripts/mongo-test-server run $(if $(filter standalone,$(MONGODB_TOPOLOGY)),--standalone) -- \
		$(PY) -m pytest $(PYTEST_ARGS)

# ruff, then mypy (strict, with django-stubs and pydantic's plugin) on all non-test code. The plugin loads the
# settings, so it runs with DEBUG on (no secret needed).
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	DEBUG=1 $(VENV)/bin/mypy .

bench: $(STAMP) native
	$(PY) -m bench.live_bench $(BENCH_ARGS)

# DONE for 1,000 students on SQLite and, with BENCH_ARGS=--mongodb, on SecantusDB (both topologies), in one run.
bench-done: $(STAMP) native
	$(PY) -m bench.done_bench $(BENCH_ARGS)

# HTTP routes and a lesson start (N = 1,000) against the spec's own stack (Express, jsonwebtoken, ws,
# better-sqlite3: bench/reference-node/, installed by the bench with `npm ci` the first time; needs Node 20).
bench-http: $(STAMP) native
	$(PY) -m bench.http_bench $(BENCH_ARGS)

# The floor under a broadcast: one frame written to each of N loopback sockets, Python's send() against Node's
# net.Socket.write, alternating (no packages: Node's own `net`).
bench-send-floor: $(STAMP)
	$(PY) -m bench.send_floor $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache staticfiles staticfiles.builds .prepare.lock .native.lock server/_fanout*.so
