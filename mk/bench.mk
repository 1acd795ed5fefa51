# Online serving benchmark (issue #6), included by the Makefile. Not part of `make test`.
# Docs: docs/benchmarks.md (generated). Code: the devtools/bench/ package (one module per
# concern); wrk scripts: bench/*.lua.
#
# Expects from the main Makefile: VENV (.venv), PY ($(VENV)/bin/python), STAMP.
# BENCH_ARGS passes extra flags, e.g. make bench BENCH_ARGS="--mlserver" or
# BENCH_ARGS="--scenarios full,cache_hit --docs" or, to measure a transformer setting,
# BENCH_ARGS="--transformer-env KEY=VALUE --transformer-arg=--flag=value"
# (python -m devtools.bench --help).

BENCH_ARGS ?=

.PHONY: bench bench-quick bench-tools

# wrk (load generator) and redis-server (online store): installed with apt-get when running
# as root, otherwise the error says which command to run.
bench-tools:
	@for pair in wrk:wrk redis-server:redis-server; do \
	  tool=$${pair%%:*}; pkg=$${pair##*:}; \
	  command -v $$tool >/dev/null 2>&1 && continue; \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "bench: installing $$pkg with apt-get"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkg >/dev/null \
	      || { echo "bench: apt-get install $$pkg failed" >&2; exit 1; }; \
	  else \
	    echo "bench: '$$tool' not found. Install it: sudo apt-get install -y $$pkg" >&2; exit 1; \
	  fi; \
	done

bench: $(STAMP) bench-tools ## Serving benchmark on Redis (wrk, 10 s runs): bench/results, docs/benchmarks.md
	$(PY) -m devtools.bench $(BENCH_ARGS)

bench-quick: $(STAMP) bench-tools ## The serving benchmark with 3 s runs (a few minutes)
	$(PY) -m devtools.bench --quick $(BENCH_ARGS)
