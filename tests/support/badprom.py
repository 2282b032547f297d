"""A bad Prometheus: an HTTP proxy in front of the real one whose misbehaviour is switched at run time.

The fault tests point an operator at `BadPrometheus.url` instead of the real server. In mode `pass`
every request is forwarded as it is; in the other modes the proxy fails the way a sick Prometheus, a
broken gateway or a buggy query does. The answers of the data modes (`nan` ... `matrix`) are the real
server's answers, rewritten, so every label the operator looks for is still there:

    pass          forward the request and the answer unchanged
    delay         forward, but only after `delay` seconds (past the operator's query timeout)
    drop          read the request, close the connection without an answer
    http-500      answer HTTP 500 with a plain-text body, as a failing gateway does
    http-503      answer HTTP 503 (not Prometheus' own errorType=timeout)
    nan, inf      every sample's value becomes NaN, +Inf
    empty         the result becomes an empty vector
    series        every series comes twice, told apart by a `replica` label
    matrix        the result becomes a range vector (resultType matrix, `values` lists)
    invalid-json  HTTP 200 with a JSON body cut short

Runs in a thread of the test process (`bad_prometheus(upstream)`); `mode` may be set from the test at
any moment and applies to the next request.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

MODES: Final = (
    "pass",
    "delay",
    "drop",
    "http-500",
    "http-503",
    "nan",
    "inf",
    "empty",
    "series",
    "matrix",
    "invalid-json",
)


def _values(value: str) -> Callable[[list[dict[str, Any]]], list[dict[str, Any]]]:
    def rewrite(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**item, "value": [item["value"][0], value]} for item in result]

    return rewrite


def _twice(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**item, "metric": {**item.get("metric", {}), "replica": replica}}
        for item in result
        for replica in ("a", "b")
    ]


def _matrix(result: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"metric": item.get("metric", {}), "values": [item["value"]]} for item in result]


REWRITES: Final[dict[str, tuple[str, Callable[[list[dict[str, Any]]], list[dict[str, Any]]]]]] = {
    "nan": ("vector", _values("NaN")),
    "inf": ("vector", _values("+Inf")),
    "empty": ("vector", lambda result: []),
    "series": ("vector", _twice),
    "matrix": ("matrix", _matrix),
}
"""Data modes: the resultType and the rewritten result of a successful vector answer."""


class BadPrometheus:
    """The proxy's state: where it forwards, its current mode, how many queries each mode served."""

    def __init__(self, upstream: str, delay: float) -> None:
        self.upstream = upstream.rstrip("/")
        self.delay = delay
        self._mode = "pass"
        self.served: Counter[str] = Counter()
        """Queries (/api/v1/query) answered per mode."""
        self.closing = threading.Event()
        """Set on shutdown: a delayed answer stops waiting."""
        self.url = ""

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        self._mode = mode

    def forward(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        """The real server's status and body for the same request."""
        req = urllib.request.Request(self.upstream + path, data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return int(r.status), bytes(r.read())
        except urllib.error.HTTPError as e:
            return int(e.code), bytes(e.read())


def _rewrite(mode: str, body: bytes) -> bytes:
    """The real answer with its result rewritten for a data mode (non-vector answers unchanged)."""
    doc = json.loads(body)
    data = doc.get("data") or {}
    if data.get("resultType") != "vector":
        return body
    result_type, rewrite = REWRITES[mode]
    doc["data"] = {"resultType": result_type, "result": rewrite(data["result"])}
    return json.dumps(doc).encode()


def _handler(proxy: BadPrometheus) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the test's output is not the place for an access log

        def do_GET(self) -> None:
            self._serve("GET", None)

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            self._serve("POST", self.rfile.read(length))

        def _serve(self, method: str, body: bytes | None) -> None:
            mode = proxy.mode
            if not self.path.startswith("/api/v1/query"):
                mode = "pass"  # readiness probes and the like are not what the tests break
            else:
                proxy.served[mode] += 1
            if mode == "drop":
                self.close_connection = True
                return
            if mode == "http-500":
                return self._answer(500, b"upstream request failed\n", "text/plain")
            if mode == "http-503":
                return self._answer(503, b"Service Unavailable\n", "text/plain")
            if mode == "invalid-json":
                return self._answer(200, b'{"status":"success","data":{"resultType":"vec', "application/json")
            if mode == "delay" and proxy.closing.wait(proxy.delay):
                return
            headers = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "accept")}
            status, answer = proxy.forward(method, self.path, body, headers)
            if mode in REWRITES and status == 200:
                answer = _rewrite(mode, answer)
            self._answer(status, answer, "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except OSError:
                self.close_connection = True  # the client gave up (a delayed answer): nothing to do

    return Handler


@contextmanager
def bad_prometheus(upstream: str, delay: float = 8.0) -> Iterator[BadPrometheus]:
    """A proxy to `upstream` on a free port of 127.0.0.1, in mode `pass`, stopped on exit."""
    proxy = BadPrometheus(upstream, delay)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(proxy))
    server.daemon_threads = True
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, name="bad-prometheus", daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.closing.set()
        server.shutdown()
        server.server_close()
