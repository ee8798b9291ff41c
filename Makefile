# pytest-fwgates: every target sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
LINT_DIRS := $(wildcard pytest_fwgates tests examples bench)

.PHONY: all test demo lint typecheck bench system-deps venv clean

all: test

# Debian packages the example stack and the integration tests run for real.
system-deps:
	@missing=""; \
	for b in nginx:nginx prometheus:prometheus sshd:openssh-server wrk:wrk chromium:chromium chromedriver:chromium-driver node:nodejs openssl:openssl jq:jq; do \
	  cmd=$${b%%:*}; pkg=$${b#*:}; \
	  command -v $$cmd >/dev/null 2>&1 || [ -x /usr/sbin/$$cmd ] || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  else \
	    echo "missing Debian packages:$$missing (run: sudo apt-get install -y$$missing)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,load,examples]'
	touch $(STAMP)

venv: $(STAMP)

lint: $(STAMP)
	$(VENV)/bin/ruff check $(LINT_DIRS)
	$(VENV)/bin/ruff format --check $(LINT_DIRS)
	$(VENV)/bin/mypy

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# --dist worksteal: a worker that runs out of tests takes half of the other's queue. With the
# default (load), each worker is first handed a block of tests in collection order: every
# integration test (tests/integration is collected first; ~9.5 of the suite's ~15 test-minutes)
# went to one worker while the other ran out of tests after ~5 minutes.
test: system-deps $(STAMP) lint
	$(VENV)/bin/pytest -n 2 --dist worksteal -q tests

demo: system-deps $(STAMP)
	$(PY) -m examples.demo

bench: system-deps $(STAMP)
	$(PY) -m bench $(BENCH)

clean:
	rm -rf $(VENV) reports .pytest_cache .mypy_cache .ruff_cache
