# Stream inference (issue 13), included by the Makefile. Docs: docs/stream.md.
#
# Expects from the main Makefile: VENV (.venv), PY ($(VENV)/bin/python), STAMP.
# STREAM_BENCH_ARGS passes flags to python -m devtools.bench_stream (--help), e.g.
# STREAM_BENCH_ARGS="--events 200000 --seconds 20 --note 'quiet machine'".

STREAM_BENCH_ARGS ?=

.PHONY: bench-stream
bench-stream: $(STAMP) bench-tools ## Stream worker events/s (1 and 2 workers), event→prediction p50/p99, vs feast /push and /producer/v1/write
	$(PY) -m devtools.bench_stream $(STREAM_BENCH_ARGS)
