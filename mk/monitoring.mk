# Monitoring: the offline drift report over a window of the payload log (docs/monitoring.md).
# Expects from the main Makefile: PY ($(VENV)/bin/python), STAMP, MODEL_DIR.

PAYLOAD_REDIS ?= 127.0.0.1:6379
PAYLOAD_STREAM ?= click-model:payloads
REPORT_WINDOW ?= 1h
REPORT_OUT ?= build/drift-report.html
REPORT_ARGS ?=

.PHONY: drift-report
drift-report: $(STAMP) ## Evidently drift report (REPORT_OUT) of the last REPORT_WINDOW of the payload log on PAYLOAD_REDIS vs MODEL_DIR/baseline.json
	$(PY) -m transformer.monitoring.report --redis $(PAYLOAD_REDIS) --stream $(PAYLOAD_STREAM) \
	  --baseline $(MODEL_DIR)/baseline.json --window $(REPORT_WINDOW) --out $(REPORT_OUT) $(REPORT_ARGS)
