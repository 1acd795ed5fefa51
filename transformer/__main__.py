"""``python -m transformer``: the Feast-backed KServe transformer. ``--help`` lists settings."""

from __future__ import annotations

import sys

from predictor.protocol import logs
from predictor.protocol.cli import settings_from_cli
from transformer.settings import TransformerSettings


def main(argv: list[str] | None = None) -> None:
    settings = settings_from_cli(TransformerSettings, argv, "python -m transformer")
    logs.configure(settings.log_level, settings.access_log, settings.log_format)
    # kserve parses sys.argv when imported: import it only after our own parsing.
    from predictor.protocol.artifact import ArtifactError
    from transformer.auth import AuthConfigError
    from transformer.features import FeatureConfigError
    from transformer.rules import RulesFileError
    from transformer.server import serve

    try:
        serve(settings)
    except (ArtifactError, AuthConfigError, FeatureConfigError, RulesFileError, RuntimeError) as e:
        print(f"python -m transformer: {e}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
