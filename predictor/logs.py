"""Logging for both servers: one format, and no per-request lines unless asked for.

Per request, KServe logs an access line and two timing lines and httpx logs each call to the
predictor, all at INFO: at 1,000 requests/s that is most of a core. They stay off unless
``access_log`` is set; payloads are never logged.
"""

from __future__ import annotations

import logging

PER_REQUEST = ("uvicorn.access", "kserve.trace", "httpx", "httpcore")


def configure(level: str, access_log: bool) -> None:
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for name in PER_REQUEST:
        logging.getLogger(name).setLevel(logging.INFO if access_log else logging.WARNING)
