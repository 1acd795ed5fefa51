"""``python -m predictor.rollout``: the CLI in :mod:`predictor.rollout.cli`."""

from __future__ import annotations

import sys

from predictor.rollout.cli import main

if __name__ == "__main__":
    sys.exit(main())
