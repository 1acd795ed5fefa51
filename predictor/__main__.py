"""``python -m predictor``: serve a model directory. ``--help`` lists every setting."""

from __future__ import annotations

from predictor.protocol import logs
from predictor.protocol.cli import settings_from_cli
from predictor.settings import PredictorSettings


def main(argv: list[str] | None = None) -> None:
    settings = settings_from_cli(PredictorSettings, argv, "python -m predictor")
    logs.configure(settings.log_level, settings.access_log, settings.log_format)
    # kserve parses sys.argv when imported: import it only after our own parsing.
    from predictor.server import serve

    serve(settings)


if __name__ == "__main__":
    main()
