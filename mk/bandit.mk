# Multi-armed bandit over model versions (issue #14), included by the Makefile.
# Docs: docs/multi-model.md. Expects from the main Makefile: PY, STAMP.

.PHONY: bandit-sim

bandit-sim: $(STAMP) ## Offline bandit simulation on the synthetic users -> docs/img/bandit-sim.png, docs/results/bandit-sim.json
	$(PY) -m devtools.bandit_sim
