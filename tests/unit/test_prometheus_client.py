"""PrometheusSource without a network: error classification, bounded retries, bounded concurrency.

The client's `custom_query` is replaced by a stub, so these tests pin down our policy on top of
prometheus-api-client; tests/integration/test_prometheus_source.py checks the same against the real
server."""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Literal

import pytest
import requests
import urllib3
from prometheus_api_client.exceptions import PrometheusApiClientException

from modelgate.observe.prometheus import PrometheusConfig, PrometheusSource, QueryResult


@dataclass(frozen=True)
class HttpError:
    """A non-200 answer from Prometheus."""

    status: int
    body: bytes


def http_error(status: int, body: bytes) -> HttpError:
    return HttpError(status, body)


class Stub:
    """Plays the client's custom_query: raises or returns the scripted outcomes, in order. An
    HttpError goes through the session's response hooks, as a real answer does, then raises the
    client's exception with a message unlike the client's own: nothing may parse that text."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.calls: list[dict[str, Any]] = []
        self.session: requests.Session | None = None

    def __call__(self, query: str, params: dict[str, str], timeout: float) -> Any:
        self.calls.append({"query": query, "params": params, "timeout": timeout})
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, HttpError):
            response = requests.Response()
            response.status_code, response._content = outcome.status, outcome.body
            assert self.session is not None
            requests.hooks.dispatch_hook("response", self.session.hooks, response)
            raise PrometheusApiClientException("a future client's wording")
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome


def source(stub: Stub, **config: Any) -> PrometheusSource:
    s = PrometheusSource(PrometheusConfig("http://prometheus.invalid:9090", **config))
    s._client.custom_query = stub  # type: ignore[method-assign]
    stub.session = s._client._session
    return s


def ask(s: PrometheusSource, query: str = "up") -> QueryResult:
    return asyncio.run(s.query(query))


BAD_DATA = b'{"status":"error","errorType":"bad_data","error":"1:5: parse error: unclosed left parenthesis"}'
EXECUTION = b'{"status":"error","errorType":"execution","error":"found duplicate series for the match group"}'
TIMEOUT = b'{"status":"error","errorType":"timeout","error":"query timed out in expression evaluation"}'


@pytest.mark.parametrize(
    ("raised", "kind", "text"),
    [
        (http_error(400, BAD_DATA), "query-error", "1:5: parse error: unclosed left parenthesis"),
        (http_error(422, EXECUTION), "query-error", "found duplicate series for the match group"),
        (http_error(503, TIMEOUT), "timeout", "query timed out in expression evaluation"),
        (http_error(401, b"Unauthorized\n"), "bad-answer", "HTTP 401: Unauthorized"),
        (http_error(502, b"<html>bad gateway</html>"), "bad-answer", "HTTP 502: <html>bad gateway</html>"),
        (http_error(503, b""), "bad-answer", "HTTP 503: (empty body)"),
        (requests.exceptions.ReadTimeout("read timed out"), "timeout", "timed out after 5s"),
        (requests.exceptions.SSLError("certificate verify failed"), "unreachable", "TLS error"),
        (requests.exceptions.ConnectTimeout("connect timed out"), "unreachable", "could not connect"),
        (requests.exceptions.ConnectionError("refused"), "unreachable", "cannot connect"),
        (
            requests.exceptions.ConnectionError(
                urllib3.exceptions.ProtocolError("Connection aborted.", ConnectionResetError())
            ),
            "unreachable",
            "closed the connection without an answer",
        ),
        (requests.exceptions.JSONDecodeError("Expecting value", "{", 0), "bad-answer", "invalid JSON"),
        (KeyError("data"), "bad-answer", "did not answer like the Prometheus API"),
    ],
)
def test_errors_are_classified_with_prometheus_text(
    raised: Exception | HttpError, kind: str, text: str
) -> None:
    result = ask(source(Stub(raised), retries=0))
    assert result.kind == kind
    assert text in result.error


def test_vector_and_scalar_results_become_series() -> None:
    vector = [{"metric": {"model": "a"}, "value": [1.0, "0.25"]}, {"metric": {}, "value": [1.0, "NaN"]}]
    result = ask(source(Stub(vector)))
    assert result.ok and [s.labels for s in result.series] == [{"model": "a"}, {}]
    assert result.series[0].value == 0.25
    assert ask(source(Stub([1.0, "+Inf"]))).series[0].value == float("inf")
    assert ask(source(Stub([1.0, "hello"]))).kind == "query-error"
    matrix = ask(source(Stub([{"metric": {}, "values": [[1.0, "0.25"]]}])))
    assert matrix.kind == "query-error" and "matrix (range vector), expected a vector" in matrix.error


def test_connection_errors_are_retried_a_bounded_number_of_times() -> None:
    stub = Stub(requests.exceptions.ConnectionError("refused"))
    result = ask(source(stub, retries=2))
    assert result.kind == "unreachable" and result.attempts == 3 == len(stub.calls)


def test_a_retry_that_succeeds_gives_the_series() -> None:
    stub = Stub(requests.exceptions.ConnectionError("refused"), [{"metric": {}, "value": [1, "2"]}])
    result = ask(source(stub, retries=2))
    assert result.ok and result.attempts == 2


@pytest.mark.parametrize(
    "raised",
    [requests.exceptions.ReadTimeout("slow"), http_error(400, BAD_DATA), http_error(503, TIMEOUT)],
)
def test_timeouts_and_query_errors_are_never_retried(raised: Exception) -> None:
    stub = Stub(raised)
    assert ask(source(stub, retries=5)).attempts == 1 == len(stub.calls)


def test_every_call_has_a_client_and_a_server_timeout_within_the_budget() -> None:
    stub = Stub([])
    ask(source(stub, timeout=2.5))
    (call,) = stub.calls
    assert 0 < call["timeout"] <= 2.5
    assert call["params"]["timeout"].endswith("ms") and int(call["params"]["timeout"][:-2]) <= 2500


def test_at_most_concurrency_queries_run_at_once_even_when_callers_are_cancelled() -> None:
    release = threading.Event()
    lock = threading.Lock()
    running = [0, 0]  # now, peak

    def blocking(query: str, params: dict[str, str], timeout: float) -> list[Any]:
        with lock:
            running[0] += 1
            running[1] = max(running[1], running[0])
        release.wait(10)
        with lock:
            running[0] -= 1
        return []

    class CountingSemaphore(asyncio.Semaphore):
        waiting = 0

        async def acquire(self) -> Literal[True]:
            self.waiting += 1
            try:
                return await super().acquire()
            finally:
                self.waiting -= 1

    s = source(Stub([]), concurrency=2)
    s._client.custom_query = blocking  # type: ignore[method-assign]
    slots = s._slots = CountingSemaphore(2)

    async def scenario() -> None:
        first = [asyncio.ensure_future(s.query(f"q{i}")) for i in range(2)]
        for _ in range(1000):  # bounded wait for both threads to start
            if running[0] == 2:
                break
            await asyncio.sleep(0.01)
        for task in first:  # cancelled callers: their threads still run and keep their slots
            task.cancel()
        rest = [asyncio.ensure_future(s.query(f"r{i}")) for i in range(4)]
        for _ in range(10):  # let every task run up to where it blocks
            await asyncio.sleep(0)
        assert slots.waiting == 4, "a cancelled caller gave its slot away while its thread still runs"
        assert running[0] == 2
        release.set()
        await asyncio.gather(*rest)

    asyncio.run(scenario())
    assert running[1] == 2


def test_bearer_token_and_basic_auth_are_exclusive() -> None:
    with pytest.raises(ValueError, match="not both"):
        PrometheusConfig("http://p:9090", bearer_token="t", username="u", password="p")


def test_bearer_token_file_is_read_on_every_request(tmp_path: Any) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    s = PrometheusSource(PrometheusConfig("http://p:9090", bearer_token_file=str(token)))
    auth = s._client.auth
    prepared = requests.Request("GET", "http://p:9090/api/v1/query").prepare()
    assert auth(prepared).headers["Authorization"] == "Bearer first"
    token.write_text("rotated")
    assert auth(prepared).headers["Authorization"] == "Bearer rotated"


def test_config_from_environment_with_the_flag_winning() -> None:
    env = {
        "MODELGATE_PROMETHEUS_URL": "https://prom.monitoring:9090",
        "MODELGATE_PROMETHEUS_BEARER_TOKEN_FILE": "/var/run/secrets/token",
        "MODELGATE_PROMETHEUS_CA_FILE": "/etc/prom/ca.crt",
        "MODELGATE_PROMETHEUS_TIMEOUT": "2.5",
        "MODELGATE_PROMETHEUS_CONCURRENCY": "8",
    }
    config = PrometheusConfig.from_env(environ=env)
    assert (config.url, config.bearer_token_file, config.ca_file) == (
        "https://prom.monitoring:9090",
        "/var/run/secrets/token",
        "/etc/prom/ca.crt",
    )
    assert (config.timeout, config.concurrency, config.retries, config.insecure) == (2.5, 8, 2, False)
    assert PrometheusConfig.from_env("http://flag:9090", env).url == "http://flag:9090"
    with pytest.raises(ValueError, match="no Prometheus URL"):
        PrometheusConfig.from_env(environ={})
