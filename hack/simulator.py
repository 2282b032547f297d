#!/usr/bin/env python3
"""A model-traffic simulator built on modelgate's reference exporter, for the demo and the tests.

    python hack/simulator.py --port 9400 --namespace fraud-prod --model fraud-detector --version 1.0.0
    python hack/simulator.py --port 0 --models fraud-prod/fraud-detector/1.0.0,fraud-prod/churn/2.1.0

Each simulated model draws features (age, amount) from a fixed distribution, scores them with a
small logistic model, and records every prediction in a `DriftExporter` whose reference profile was
fitted on 20,000 draws from the same distribution, so with drift off its PSI stays near 0.01 (noise
of a 1,000-prediction window over 10 bins). With drift on, the feature distribution shifts (older
customers, larger amounts), the scores move up, and the prediction PSI passes 0.25 within about two
seconds at the default rate (the window turns over in window/rate = 4 s).

HTTP, on --port (and also on --control-port when given):
    GET  /metrics                       Prometheus exposition of every model
    GET  /drift                         JSON: each model's drift switch and current PSI
    POST /drift?model=NAME&on=1         switch drift on (on=0: off); namespace= and version= narrow
                                        the match, no model= means every model
    GET  /healthz                       ok

On start it prints one line, `simulator: ready port=P control_port=C models=...`, with the bound
ports (useful with --port 0). Predictions run in one background thread at --rate per model and
second, catching up at most one second after a stall. SIGTERM or SIGINT stops it cleanly (exit 0).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import signal
import sys
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from types import FrameType
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app

from modelgate.exporter import DriftExporter, DriftExporterSet, ReferenceProfile

REFERENCE_DRAWS = 20_000
BINS = 10
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass
class SimulatedModel:
    """One model version: its traffic generator, its exporter and its drift switch."""

    namespace: str
    name: str
    version: str
    window: int
    error_rate: float
    drift: bool = False
    rng: random.Random = field(init=False)
    exporter: DriftExporter = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(zlib.crc32(f"{self.namespace}/{self.name}/{self.version}".encode()))
        training = [self.draw(drifted=False) for _ in range(REFERENCE_DRAWS)]
        reference = ReferenceProfile.fit(
            [score for _, score in training],
            {"age": [f["age"] for f, _ in training], "amount": [f["amount"] for f, _ in training]},
            k=BINS,
        )
        self.exporter = DriftExporter(
            self.namespace,
            self.name,
            self.version,
            reference,
            window=self.window,
            min_samples=self.window // 2,
            registry=None,
        )

    @property
    def id(self) -> str:
        return f"{self.namespace}/{self.name}/{self.version}"

    def draw(self, drifted: bool) -> tuple[dict[str, float], float]:
        """Features and score of one request; drift moves both features and so the score."""
        age = self.rng.gauss(55 if drifted else 40, 10)
        amount = self.rng.lognormvariate(5.0 if drifted else 4.0, 0.6)
        z = 0.08 * (age - 40) + 0.9 * (math.log(amount) - 4.0) + self.rng.gauss(0, 0.5)
        return {"age": age, "amount": amount}, 1 / (1 + math.exp(-z))

    def predict(self) -> None:
        features, score = self.draw(self.drift)
        self.exporter.observe_features(features)
        self.exporter.observe_latency(0.005 + self.rng.expovariate(1 / 0.02))
        if self.rng.random() < self.error_rate:
            self.exporter.observe_error()
        else:
            self.exporter.observe_prediction(score)

    def state(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "model": self.name,
            "version": self.version,
            "drift": self.drift,
            "psi": self.exporter.prediction_psi(),
        }


def simulate(models: Sequence[SimulatedModel], rate: float, stop: threading.Event) -> None:
    """Run `rate` predictions per model and second until `stop`; never more than a second behind."""
    started, done = time.monotonic(), 0
    while not stop.wait(0.05):
        owed = int((time.monotonic() - started) * rate) - done
        if owed > rate:  # after a stall (suspended process), skip rather than burst
            done += owed - int(rate)
            owed = int(rate)
        for _ in range(owed):
            for m in models:
                m.predict()
        done += owed


def control_app(
    models: Sequence[SimulatedModel], registry: CollectorRegistry
) -> Callable[..., Iterable[bytes]]:
    """The WSGI app: /metrics from the registry, /drift to read and switch drift, /healthz."""
    metrics = make_wsgi_app(registry)

    def reply(start: StartResponse, status: str, body: object) -> list[bytes]:
        data = (json.dumps(body, indent=1) + "\n").encode()
        start(status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def app(environ: dict[str, Any], start: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", "/"), environ.get("REQUEST_METHOD", "GET")
        if path == "/metrics":
            return metrics(environ, start)  # type: ignore[no-any-return]
        if path == "/healthz":
            start("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        if path != "/drift":
            return reply(start, "404 Not Found", {"error": "try /metrics or /drift"})
        query = {k: v[-1] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
        chosen = [
            m
            for m in models
            if query.get("model", m.name) == m.name
            and query.get("namespace", m.namespace) == m.namespace
            and query.get("version", m.version) == m.version
        ]
        if method == "GET":
            return reply(start, "200 OK", [m.state() for m in chosen])
        if method != "POST":
            return reply(start, "405 Method Not Allowed", {"error": "GET or POST /drift"})
        if query.get("on") not in ("0", "1", "true", "false"):
            return reply(start, "400 Bad Request", {"error": "POST /drift?model=NAME&on=1 (or on=0)"})
        if not chosen:
            return reply(start, "404 Not Found", {"error": f"no simulated model matches {query}"})
        for m in chosen:
            m.drift = query["on"] in ("1", "true")
            print(f"simulator: drift {'on' if m.drift else 'off'} for {m.id}", flush=True)
        return reply(start, "200 OK", [m.state() for m in chosen])

    return app


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def parse_models(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    ids: list[tuple[str, str, str]] = []
    if args.model:
        ids.append((args.namespace, args.model, args.version))
    for item in filter(None, (args.models or "").split(",")):
        parts = item.strip().split("/")
        if len(parts) != 3 or not all(parts):
            raise SystemExit(f"simulator: --models entries are namespace/name/version, got {item!r}")
        ids.append((parts[0], parts[1], parts[2]))
    if not ids:
        raise SystemExit("simulator: give --model (with --namespace, --version) or --models")
    if len(set(ids)) != len(ids):
        raise SystemExit("simulator: a model is listed twice")
    return ids


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=9400, help="port of /metrics and /drift (0: any free port)")
    p.add_argument("--control-port", type=int, help="also serve /drift (and /metrics) on this port")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--namespace", default="default", help="namespace label of the --model")
    p.add_argument("--model", help="model name (spec.model.name)")
    p.add_argument("--version", default="1.0.0", help="model version (spec.model.version)")
    p.add_argument("--models", help="several models: namespace/name/version,...")
    p.add_argument("--drift", action="store_true", help="start with drift on")
    p.add_argument("--rate", type=float, default=250.0, help="predictions per model and second (max 5000)")
    p.add_argument("--window", type=int, default=1000, help="predictions in the exporter's live window")
    p.add_argument("--error-rate", type=float, default=0.005, help="share of predictions that fail")
    args = p.parse_args(argv)
    if not 0 < args.rate <= 5000:
        raise SystemExit("simulator: --rate must be in (0, 5000]")

    models = [
        SimulatedModel(ns, name, version, args.window, args.error_rate, drift=args.drift)
        for ns, name, version in parse_models(args)
    ]
    for m in models:  # fill the live window at once, so PSI is exported from the first scrape
        for _ in range(args.window):
            m.predict()
    registry = CollectorRegistry(auto_describe=True)
    DriftExporterSet((m.exporter for m in models), registry=registry)
    app = control_app(models, registry)
    servers = [make_server(args.host, args.port, app, server_class=_Server, handler_class=_QuietHandler)]
    if args.control_port is not None:
        servers.append(
            make_server(args.host, args.control_port, app, server_class=_Server, handler_class=_QuietHandler)
        )

    stop = threading.Event()

    def on_signal(signum: int, _: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threads = [threading.Thread(target=s.serve_forever, name="http", daemon=True) for s in servers]
    threads.append(threading.Thread(target=simulate, args=(models, args.rate, stop), name="traffic"))
    for t in threads:
        t.start()
    ports = [s.server_address[1] for s in servers]
    print(
        f"simulator: ready port={ports[0]} control_port={ports[-1]} "
        f"models={','.join(m.id for m in models)} drift={'on' if args.drift else 'off'}",
        flush=True,
    )
    while not stop.wait(1):
        pass
    for s in servers:
        s.shutdown()
        s.server_close()
    for t in threads:
        t.join(5)
    print("simulator: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
