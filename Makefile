# make run: install into .venv and serve on 127.0.0.1:8080 (SQLite + simulator); the first start
# writes the passwords of users admin and demo to ./occi-credentials.
# make test: install what the tests need (Debian packages when root) and run the whole suite
# (tests/test_packaging.py builds the wheel and serves from a fresh virtual environment), ruff
# and mypy (settings in pyproject.toml).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BIND ?= 127.0.0.1:8080
DEBIAN_TEST_PACKAGES := postgresql curl haproxy golang-go golang-github-vmware-govmomi-dev chromium
DEBIAN_BENCH_PACKAGES := postgresql wrk
PACKAGES ?= $(DEBIAN_TEST_PACKAGES)

.PHONY: run test install install-test system-deps lint clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e '.[postgresql]'

install-test: $(BIN)/python
	sh tests/e2e/setup-libvirt.sh $(VENV)
	$(BIN)/pip install --quiet -e '.[test,libvirt,xenserver]'

run: install
	@echo "OCCI server: http://$(BIND)/  (query interface: http://$(BIND)/-/ ; Ctrl-C stops it)"
	@echo "Its first start writes the passwords of users admin and demo to ./occi-credentials; then:"
	@echo "  curl -u \"demo:\$$(sed -n 's/^OCCI_DEMO_PASSWORD=//p' occi-credentials)\" http://$(BIND)/-/"
	$(BIN)/occi-server --bind $(BIND)

system-deps:
	@if [ "$$(id -u)" = "0" ]; then \
	  missing=""; for p in $(PACKAGES); do \
	    dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	  if [ -n "$$missing" ]; then \
	    echo "installing Debian packages:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	  fi; \
	else echo "not root: assuming $(PACKAGES) are installed"; fi

test: system-deps install-test
	$(BIN)/ruff check occi rendering backends tests
	$(BIN)/ruff format --check occi rendering backends tests
	$(BIN)/mypy
	$(BIN)/python -m pytest -q

lint: install-test
	$(BIN)/ruff check occi rendering backends tests
	$(BIN)/ruff format --check occi rendering backends tests

clean:
	rm -rf $(VENV) build *.egg-info occi.db* occi-credentials

# make bench [PROFILE=1]: the performance targets, measured with wrk against a baseline (bench/).
# As root it installs wrk and PostgreSQL (the PostgreSQL leg is skipped when its binaries are missing).
bench: install
	@$(MAKE) --no-print-directory system-deps PACKAGES="$(DEBIAN_BENCH_PACKAGES)"
	@command -v wrk >/dev/null 2>&1 || { echo "wrk is missing: apt-get install wrk (as root)"; exit 1; }
	@if [ -n "$(PROFILE)" ] && [ "$(PROFILE)" != "0" ]; then \
	  $(BIN)/pip install --quiet py-spy; fi
	BENCH_PROFILE=$(or $(PROFILE),0) $(BIN)/python -m bench.run
