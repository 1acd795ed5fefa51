"""Child of ``devtools.asgi_bench``: one transformer process, measured from the inside.

Run as a script (``python -P devtools/asgi_bench_child.py OPTIONS -- TRANSFORMER ARGS``) with
the code under test first on ``PYTHONPATH``: it imports nothing of this repository's
``devtools``, so it runs against any revision of ``transformer``/``predictor`` (an old ref
exported with ``git archive`` included). It starts ``python -m transformer`` as usual, up to
the point where KServe would serve (``ModelServer._serve``: the app is assembled, its layers,
limits and auth included), and instead drives the ASGI app that uvicorn would have been given
with a minimal in-process ASGI client: no sockets on the client side, so the process's CPU
time per request is what the transformer itself spends (its Redis reads and predictor calls
are real, over loopback). Prints one ``RESULT {json}`` line.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib
import io
import json
import os
import pstats
import sys
import time
from typing import Any

INFER = "/v2/models/click-model/infer"


def body(user: int, cache: bool) -> bytes:
    """The request of ``bench/infer.lua`` (one user, a fixed request context)."""
    return json.dumps(
        {
            "inputs": [
                {"name": "user_id", "datatype": "INT64", "shape": [1], "data": [user]},
                {"name": "session_duration_s", "datatype": "FP64", "shape": [1], "data": [35.0]},
                {"name": "hour_of_day", "datatype": "INT64", "shape": [1], "data": [20]},
            ],
            "parameters": {"cache": cache},
        },
        separators=(",", ":"),
    ).encode()


class Client:
    """The smallest ASGI client: what uvicorn puts in ``scope`` and hands to ``receive``."""

    def __init__(self, app: Any, token: str | None, users: int):
        self.app = app
        self.users = users
        self.bodies = {
            cache: [body(u, cache) for u in range(1, users + 1)] for cache in (False, True)
        }
        self.base_headers = [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json")]
        if token:
            self.base_headers.append((b"authorization", f"Bearer {token}".encode()))
        self.never: asyncio.Future = asyncio.get_running_loop().create_future()

    async def post(self, i: int, cache: bool) -> tuple[int, bytes]:
        raw = self.bodies[cache][i % self.users]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8080),
            "client": ("127.0.0.1", 40000),
            "scheme": "http",
            "method": "POST",
            "root_path": "",
            "path": INFER,
            "raw_path": INFER.encode(),
            "query_string": b"",
            "headers": [*self.base_headers, (b"content-length", str(len(raw)).encode())],
            "state": {},
        }
        sent = False
        status = 0
        chunks: list[bytes] = []

        async def receive() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await self.never  # a client that stays connected

        async def send(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, b"".join(chunks)


async def lifespan(app: Any) -> tuple[asyncio.Task, asyncio.Queue]:
    """Run the app's startup (as uvicorn does); the returned queue triggers the shutdown."""
    inbox: asyncio.Queue = asyncio.Queue()
    started: asyncio.Future = asyncio.get_running_loop().create_future()
    await inbox.put({"type": "lifespan.startup"})

    async def send(message: dict) -> None:
        if message["type"].startswith("lifespan.startup") and not started.done():
            started.set_result(message)

    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, send))
    message = await asyncio.wait_for(started, 60)
    if message["type"] != "lifespan.startup.complete":
        raise RuntimeError(f"startup failed: {message}")
    return task, inbox


def source_of(answer: bytes) -> str:
    outs = json.loads(answer)["outputs"]
    return next(o for o in outs if o["name"] == "prediction_source")["data"][0]


async def warm(client: Client) -> None:
    """Every user once through the cache, then until every answer is a cache hit."""
    for i in range(client.users):
        status, answer = await client.post(i, True)
        if status != 200:
            raise RuntimeError(f"warm-up: HTTP {status} {answer[:300]!r}")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sources = [source_of((await client.post(i, True))[1]) for i in range(client.users)]
        if all(s == "cache" for s in sources):
            return
        await asyncio.sleep(0.5)
    raise RuntimeError("the cache never answered every user")


async def drive_once(client: Client, cache: bool, concurrency: int, n: int) -> dict:
    """``n`` requests from ``concurrency`` workers; CPU and wall time per request."""
    counter = iter(range(n))
    errors = 0

    async def worker() -> None:
        nonlocal errors
        for i in counter:
            status, _ = await client.post(i, cache)
            errors += status != 200

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - t0
    return {
        "cpu_us": round(cpu / n * 1e6, 2),
        "wall_us": round(wall / n * 1e6, 2),
        "errors": errors,
    }


async def drive(client: Client, cache: bool, concurrency: int, n: int, repeats: int) -> dict:
    """``repeats`` runs of ``n`` requests: the least CPU per request (other load on the
    machine only ever adds to it) and the median, wall time of the least, errors in all."""
    runs = [await drive_once(client, cache, concurrency, n) for _ in range(repeats)]
    cpu = sorted(r["cpu_us"] for r in runs)
    return {
        "cpu_us": cpu[0],
        "cpu_us_median": cpu[len(cpu) // 2],
        "wall_us": min(r["wall_us"] for r in runs),
        "errors": sum(r["errors"] for r in runs),
    }


def layers(app: Any) -> list[Any]:
    """The ASGI layers from uvicorn's app down to the fast infer path (``FastInfer``)."""
    chain = [app]
    while type(chain[-1]).__name__ != "FastInfer":
        layer = chain[-1]
        inner = getattr(layer, "app", None)
        if inner is None:  # a Starlette app: its middleware stack (built on first request)
            inner = getattr(layer, "middleware_stack", None)
        if inner is None or len(chain) > 20:
            break
        chain.append(inner)
    return chain


async def answer_at_once(scope: dict, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


async def outer_layers_cost(app: Any, opts: argparse.Namespace) -> float:
    """CPU µs per request of every layer above ``FastInfer`` (limits, auth, request ids and
    metrics, Starlette's entry), with an app that answers at once in its place: no I/O, so
    the least of the runs is steady even on a loaded machine."""
    chain = layers(app)
    if type(chain[-1]).__name__ != "FastInfer" or len(chain) < 2:
        return float("nan")
    parent = chain[-2]
    attr = "app" if getattr(parent, "app", None) is chain[-1] else "middleware_stack"
    setattr(parent, attr, answer_at_once)
    try:
        client = Client(app, opts.token, opts.users)
        await drive_once(client, True, 1, 500)
        return (await drive(client, True, 1, 3000, opts.repeats))["cpu_us"]
    finally:
        setattr(parent, attr, chain[-1])


def observe_cost(model: Any, repeats: int, n: int = 3000) -> float:
    """CPU µs of the model's drift + quality hook for a one-row request (0: none)."""
    monitor = getattr(model, "monitor", None)
    if monitor is None:
        return 0.0
    import numpy as np

    features = np.random.default_rng(0).random((1, len(model.model_features)))
    users, scores = np.array([7]), np.array([0.1])
    best = float("inf")
    for _ in range(repeats):
        t0 = time.process_time()
        for _ in range(n):
            monitor.observe(features, scores, users)
        best = min(best, time.process_time() - t0)
    return round(best / n * 1e6, 2)


async def bench(app: Any, opts: argparse.Namespace, model: Any = None) -> dict:
    client = Client(app, opts.token, opts.users)
    await warm(client)
    out: dict[str, Any] = {"layers": [type(x).__name__ for x in layers(app)]}
    out["outer_layers_us"] = round(await outer_layers_cost(app, opts), 2)
    out["monitor_observe_us"] = observe_cost(model, opts.repeats)
    scenarios = [("full", False), ("cache_hit", True)]
    for name, cache in scenarios:
        for c in opts.concurrency:
            await drive_once(client, cache, c, 200)  # warm-up
            out[f"{name}/c{c}"] = await drive(client, cache, c, opts.requests, opts.repeats)
    if opts.layer_costs:  # each layer driven directly: what the layers above it cost
        costs = {}
        for layer in layers(app):
            sub = Client(layer, opts.token, opts.users)
            await drive_once(sub, True, 1, 200)
            costs[type(layer).__name__] = (await drive(sub, True, 1, opts.requests, opts.repeats))[
                "cpu_us"
            ]
        out["cache_hit_c1_from_layer"] = costs
    if opts.profile:
        prof = cProfile.Profile()
        prof.enable()
        await drive_once(
            client, opts.profile == "cache_hit", max(opts.concurrency), opts.requests * opts.repeats
        )
        prof.disable()
        if os.environ.get("ASGI_BENCH_PROFILE_OUT"):  # raw stats, for callers/callees
            prof.dump_stats(os.environ["ASGI_BENCH_PROFILE_OUT"] + f".{os.getpid()}")
        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(40)
        out["profile"] = text.getvalue()
    return out


def main() -> None:
    argv = sys.argv[1:]
    split = argv.index("--")
    p = argparse.ArgumentParser(prog="asgi_bench_child")
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=[1])
    p.add_argument("--users", type=int, default=1000)
    p.add_argument("--token")
    p.add_argument("--layer-costs", action="store_true")
    p.add_argument("--profile", choices=["full", "cache_hit"])
    opts = p.parse_args(argv[:split])
    transformer_args = argv[split + 1 :]
    sys.argv = ["transformer", *transformer_args]  # kserve parses sys.argv when imported
    import kserve

    async def serve_nothing(server: Any) -> None:
        for pending in server.servers:  # the REST/gRPC servers' coroutines, never started
            if asyncio.iscoroutine(pending):
                pending.close()
        rest = server._rest_server
        rest.create_application()
        app = rest.config.app
        if isinstance(app, str):
            module, attr = app.split(":")
            app = getattr(importlib.import_module(module), attr)
        task, inbox = await lifespan(app)
        model = server.dataplane.model_registry.get_model("click-model")
        try:
            result = await bench(app, opts, model)
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"}
        print("RESULT " + json.dumps(result), flush=True)
        await inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(task, 10)
        finally:
            os._exit(0)

    kserve.ModelServer._serve = serve_nothing
    main_module = importlib.import_module("transformer.__main__")
    main_module.main(transformer_args)


if __name__ == "__main__":
    main()
