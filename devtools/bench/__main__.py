"""``python -m devtools.bench``: the entry point of ``make bench``."""

from devtools.bench.cli import main

raise SystemExit(main())
