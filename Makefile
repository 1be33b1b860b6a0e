# The two set-up commands of the README: `make run` and `make test`. Both build the virtualenv
# from pyproject.toml on first use.
VENV ?= .venv
PYTHON ?= python3
BIN = $(VENV)/bin

.PHONY: run test chaos bench system-deps clean

$(BIN)/mailer: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

# The console with a consumer beside it on SQLite; without PROBE_TOKEN, the local gateway simulator.
run: $(BIN)/mailer
	$(BIN)/mailer run --demo

# The whole suite, chaos tests included.
test: $(BIN)/mailer system-deps
	$(BIN)/pytest

chaos: $(BIN)/mailer system-deps
	$(BIN)/pytest -m chaos

# The performance benchmarks (issue 15), a few minutes each; their output replaces the generated part
# of bench/RESULTS.md. The send benchmark's gateway is nginx (Debian's nginx-light).
bench: $(BIN)/mailer
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || \
	  { [ "$$(id -u)" = 0 ] && apt-get install -y -qq nginx-light >/dev/null; } || \
	  echo "missing system package: nginx-light (apt-get install nginx-light)"
	$(BIN)/python bench/run_all.py

# Tests drive the console in tmux and shift a consumer's clock with libfaketime, and the scale-out test
# starts its own PostgreSQL and Redis servers on 127.0.0.1 (Debian packages).
system-deps:
	@missing=""; \
	command -v tmux >/dev/null 2>&1 || missing="$$missing tmux"; \
	ls /usr/lib/*/faketime/libfaketime.so.1 >/dev/null 2>&1 || missing="$$missing faketime"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing system packages:$$missing (apt-get install$$missing)"; \
	  fi; \
	fi

clean:
	rm -rf $(VENV) data .pytest_cache
