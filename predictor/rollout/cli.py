"""The command line: ``python -m predictor.rollout canary|promote|rollback|status``.

Parses the arguments, asks :mod:`predictor.rollout.plan` what to patch and wait for, and
:mod:`predictor.rollout.kube` to do it; prints notices to stderr and the final split to
stdout. Exit codes: 0 done, 1 a rollout error (message on stderr), 2 a usage error."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from predictor.rollout.kube import (
    IsvcClient,
    RolloutError,
    load_custom_objects_api,
    wait_for_rollout,
)
from predictor.rollout.plan import (
    FIELD_MANAGER,
    _validate_uri,
    command_plan,
    goal_for,
    helm_notice,
    rollout_notice,
    validate_percent,
)
from predictor.rollout.status import format_status, status_json, summarize

DEFAULT_NAME = "click-model"
DEFAULT_NAMESPACE = "feast-inference"

EXIT_OK = 0
EXIT_ERROR = 1


def _uri_arg(value: str) -> str:
    try:
        return _validate_uri(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _percent_arg(value: str) -> int:
    try:
        return validate_percent(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--name", default=DEFAULT_NAME, help="InferenceService name [%(default)s]")
    common.add_argument(
        "--namespace", "-n", default=DEFAULT_NAMESPACE, help="namespace [%(default)s]"
    )
    common.add_argument("--context", default=None, help="kubeconfig context [current]")
    common.add_argument(
        "--field-manager",
        default=FIELD_MANAGER,
        help="server-side field manager recorded for the patched fields [%(default)s]",
    )

    waiting = argparse.ArgumentParser(add_help=False)
    waiting.add_argument(
        "--wait",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="wait until KServe reports the new traffic split [on]",
    )
    waiting.add_argument("--timeout", type=float, default=600.0, help="seconds [%(default)s]")
    waiting.add_argument("--interval", type=float, default=5.0, help=argparse.SUPPRESS)

    p = argparse.ArgumentParser(
        prog="python -m predictor.rollout",
        description="Canary rollout of a KServe InferenceService predictor.",
    )
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    c = sub.add_parser(
        "canary",
        parents=[common, waiting],
        help="send PERCENT %% of traffic to the latest (or a new) predictor revision",
    )
    c.add_argument("--percent", type=_percent_arg, required=True, help="0..100")
    c.add_argument(
        "--model-uri",
        type=_uri_arg,
        default=None,
        help="new storageUri: creates the canary revision",
    )
    pr = sub.add_parser(
        "promote",
        parents=[common, waiting],
        help="give the latest revision 100%% (removes canaryTrafficPercent)",
    )
    pr.add_argument(
        "--model-uri", type=_uri_arg, default=None, help="also set storageUri (roll forward)"
    )
    sub.add_parser(
        "rollback",
        parents=[common, waiting],
        help="send all traffic back to the last rolled-out revision (canaryTrafficPercent=0); "
        "after a promotion, to the revision before it",
    )
    s = sub.add_parser("status", parents=[common], help="print the traffic split")
    s.add_argument("--json", action="store_true", help="machine-readable output")
    return p


def main(
    argv: Sequence[str] | None = None,
    *,
    api: Any = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    args = build_parser().parse_args(argv)

    def say(msg: str) -> None:
        print(msg, file=err, flush=True)

    try:
        # Build (and so validate) the patch before touching the cluster.
        plan = command_plan(
            args.command, getattr(args, "percent", None), getattr(args, "model_uri", None)
        )
        client = IsvcClient(
            api if api is not None else load_custom_objects_api(args.context),
            args.name,
            args.namespace,
            args.field_manager,
        )
        current = client.get()
        before = summarize(current)
        if plan is None:
            if args.json:
                print(json.dumps(status_json(before), indent=2), file=out)
            else:
                print(format_status(before), file=out)
            return EXIT_OK

        body, expected = plan
        model_uri = getattr(args, "model_uri", None)
        notice = rollout_notice(before, args.command, model_uri, expected)
        if notice:
            say(f"{notice[0]}: {notice[1]}")
        helm = helm_notice(current, args.command, body, model_uri, expected)
        if helm:
            say(f"note: {helm}")
        goal = goal_for(before, args.command, expected, model_uri)

        say(f"patching {args.namespace}/{args.name}: {json.dumps(body, sort_keys=True)}")
        client.patch(body)
        if not args.wait:
            return EXIT_OK
        st = wait_for_rollout(
            client,
            goal,
            timeout=args.timeout,
            interval=args.interval,
            sleep=sleep,
            clock=clock,
            log=say,
        )
        print(format_status(st), file=out)
        return EXIT_OK
    except (RolloutError, ValueError) as e:
        say(f"error: {e}")
        return EXIT_ERROR
