# Fault tolerance (issue #11), included by the Makefile. Docs: docs/reliability.md.
#
# `make faults` is also part of `make test` (its tests carry the `faults` marker, which
# `-m "not cluster"` includes). Expects from the main Makefile: PY, STAMP, PYTEST_ARGS.

SOAK_SECONDS ?= 600
DURABILITY_SECONDS ?= 5

.PHONY: faults soak durability

faults: $(STAMP) ## Fault injection on the real stack under load (Redis/predictor kill, pause, SIGTERM)
	$(PY) -m pytest -m faults $(PYTEST_ARGS)

soak: $(STAMP) ## Mixed traffic for SOAK_SECONDS (default 600): RSS, fds, latency -> docs/results/soak.json, docs/img/soak.png
	$(PY) -m devtools.soak soak --duration $(SOAK_SECONDS)

durability: $(STAMP) ## Producer writes/s and latency per Redis appendfsync -> docs/results/durability.json
	$(PY) -m devtools.soak durability --seconds $(DURABILITY_SECONDS)
