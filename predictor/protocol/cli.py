"""Build a pydantic-settings object from the command line, KServe style.

KServe passes flags spelled ``--model_name`` / ``--http_port`` to the containers it runs, and
may add ones we do not know; so every settings field becomes ``--field_name`` (``--field-name``
works too), unknown flags are logged and ignored, and anything not given on the command line
comes from the environment (``<PREFIX>FIELD``) or the field default. A bad value exits with
status 2 and a message naming the flag.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings

log = logging.getLogger(__name__)
S = TypeVar("S", bound=BaseSettings)


def parser_for(cls: type[BaseSettings], prog: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog,
        description=(cls.__doc__ or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,
    )
    prefix = cls.model_config.get("env_prefix", "")
    for name, field in cls.model_fields.items():
        flags = [f"--{name}"]
        if "-" not in name and "_" in name:
            flags.append(f"--{name.replace('_', '-')}")
        aliases = getattr(field.json_schema_extra, "get", lambda *_: None)("cli_aliases") or []
        flags.extend(aliases)
        default = "required" if field.is_required() else repr(field.default)
        p.add_argument(
            *flags,
            dest=name,
            metavar=name.upper(),
            help=f"{field.description or ''} [env {prefix}{name.upper()}; default {default}]",
        )
    return p


def settings_from_cli(cls: type[S], argv: list[str] | None, prog: str) -> S:
    """Parse ``argv`` (None: sys.argv[1:]) into ``cls``; exits 2 on a bad value."""
    parser = parser_for(cls, prog)
    given, unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    if unknown:
        log.warning("ignoring unknown arguments: %s", " ".join(unknown))
    try:
        return cls(**vars(given))
    except ValidationError as e:
        for err in e.errors():
            where = ".".join(str(p) for p in err["loc"])
            print(f"{prog}: --{where}: {err['msg']} (got {err.get('input')!r})", file=sys.stderr)
        raise SystemExit(2) from None
