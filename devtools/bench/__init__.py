"""The online serving benchmark (``python -m devtools.bench``, ``make bench``), one module per
concern: scenarios, load generation (wrk), process watching, in-process floors, the MLServer
comparison, targets as ratios to same-run floors, the report and the plot."""
