"""Prometheus access: one instant query in, a `QueryResult` out, never an exception, never a stall.

Everything that reads Prometheus goes through the `MetricSource` protocol (`async query(promql)`),
so decisions and tests can use a fake. `PrometheusSource` implements it with prometheus-api-client's
`PrometheusConnect`, whose behaviour needs four corrections (each measured against the real server):

- It is synchronous (requests). Every call runs in a worker thread (`asyncio.to_thread`), at most
  `concurrency` at a time (an `asyncio.Semaphore`), so Kopf's event loop never waits on the network.
  A cancelled caller does not free its slot before the thread really finishes, so the bound holds.
- It has no timeout by default. Every call has one (`timeout`, default 5 s), and Prometheus is asked
  to give up at the same time (`timeout` query parameter), so a slow query is abandoned on both ends.
- Its default retry adapter retries read timeouts too (one call with timeout 5 made 4 attempts,
  20 s). We mount `Retry(0, read=False)` (no retries, read timeouts raised as such) and retry
  ourselves: connection errors (refused, reset, DNS) up to `retries` times with a short backoff, all
  within the same overall `timeout`; a read timeout is never retried, because Prometheus may still be
  busy with the query and a retry would double its load.
- It escapes nothing; see modelgate.observe.promql for how label values enter queries.

Outcomes are classified for the verdict engine: `series` (a possibly empty list of label sets with a
value), `query-error` (HTTP 400/422 with Prometheus' own error text, e.g. a parse error, or a result
no threshold applies to: a string, a matrix), `timeout` (client read timeout, or Prometheus' 503
errorType=timeout), `unreachable` (no connection, TLS failure, a connection dropped before the
answer) and `bad-answer` (an answer, but not one to use: any other HTTP status, authentication
refused included, invalid JSON, JSON that is not the Prometheus API). Each error text names the
fault ("timed out after 5s", "HTTP 503", "invalid JSON", "closed the connection"), because it is
what the ModelDeployment's status shows.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Protocol

import requests
import urllib3
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

QueryKind = Literal["series", "query-error", "timeout", "unreachable", "bad-answer"]
DEFAULT_TIMEOUT: Final = 5.0
DEFAULT_CONCURRENCY: Final = 4
DEFAULT_RETRIES: Final = 2
_BACKOFF: Final = 0.1


@dataclass(frozen=True)
class Series:
    """One series of an instant vector: its labels and its value (may be NaN or +/-Inf)."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class QueryResult:
    """What one instant query gave: series, or why there are none."""

    kind: QueryKind
    series: tuple[Series, ...] = ()
    error: str = ""
    """Prometheus' error text or the transport error, for the reading's message."""
    attempts: int = 1
    elapsed: float = 0.0
    """Seconds spent, retries included (for the query duration metric)."""

    @property
    def ok(self) -> bool:
        return self.kind == "series"


class MetricSource(Protocol):
    """Anything that answers instant PromQL queries. Implementations never raise."""

    async def query(self, promql: str) -> QueryResult: ...


class _BearerAuth(requests.auth.AuthBase):
    """Authorization: Bearer, from a fixed token or a file read on every request (tokens rotate)."""

    def __init__(self, token: str | None, token_file: str | None) -> None:
        self.token, self.token_file = token, token_file

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        token = Path(self.token_file).read_text().strip() if self.token_file else self.token
        r.headers["Authorization"] = f"Bearer {token}"
        return r


@dataclass(frozen=True)
class PrometheusConfig:
    """How to reach Prometheus. At most one of bearer token (or token file) and basic auth."""

    url: str
    bearer_token: str | None = field(default=None, repr=False)
    bearer_token_file: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    """CA bundle to verify Prometheus' TLS certificate; default: the system's."""
    insecure: bool = False
    """Skip TLS verification (tests only)."""
    cert_file: str | None = None
    key_file: str | None = None
    """Client certificate and key for mutual TLS."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds for one query, retries included."""
    retries: int = DEFAULT_RETRIES
    """Extra attempts after a connection error (never after a read timeout)."""
    concurrency: int = DEFAULT_CONCURRENCY
    """Queries in flight at once."""

    @classmethod
    def from_env(cls, url: str | None = None, environ: Mapping[str, str] | None = None) -> PrometheusConfig:
        """A config from MODELGATE_PROMETHEUS_* variables; `url` (a flag) wins over ..._URL.

        URL, BEARER_TOKEN, BEARER_TOKEN_FILE, USERNAME, PASSWORD, CA_FILE, INSECURE (true/false),
        CERT_FILE, KEY_FILE, TIMEOUT (seconds), RETRIES, CONCURRENCY."""
        env = os.environ if environ is None else environ

        def get(name: str) -> str | None:
            return env.get(f"MODELGATE_PROMETHEUS_{name}") or None

        url = url or get("URL")
        if not url:
            raise ValueError("no Prometheus URL: pass --prometheus-url or set MODELGATE_PROMETHEUS_URL")
        return cls(
            url=url,
            bearer_token=get("BEARER_TOKEN"),
            bearer_token_file=get("BEARER_TOKEN_FILE"),
            username=get("USERNAME"),
            password=get("PASSWORD"),
            ca_file=get("CA_FILE"),
            insecure=(get("INSECURE") or "false").lower() == "true",
            cert_file=get("CERT_FILE"),
            key_file=get("KEY_FILE"),
            timeout=float(get("TIMEOUT") or DEFAULT_TIMEOUT),
            retries=int(get("RETRIES") or DEFAULT_RETRIES),
            concurrency=int(get("CONCURRENCY") or DEFAULT_CONCURRENCY),
        )

    def __post_init__(self) -> None:
        if (self.bearer_token or self.bearer_token_file) and self.username:
            raise ValueError("set a bearer token or basic auth for Prometheus, not both")
        if self.timeout <= 0 or self.retries < 0 or self.concurrency < 1:
            raise ValueError("Prometheus timeout must be > 0, retries >= 0 and concurrency >= 1")


def _error_text(response: requests.Response | None) -> tuple[int | None, str, str]:
    """(status, errorType, error) of a non-200 answer, read from the HTTP response itself (the
    client's exception carries only a formatted string, which an upgrade could change)."""
    if response is None:
        return None, "", "no HTTP response was recorded"
    try:
        doc = response.json()
        return response.status_code, str(doc.get("errorType", "")), str(doc.get("error", ""))
    except (ValueError, AttributeError):
        return response.status_code, "", response.text.strip()[:500]


def _classify_http(response: requests.Response | None) -> tuple[QueryKind, str]:
    status, error_type, text = _error_text(response)
    if status in (400, 422):
        return "query-error", text
    if status == 503 and error_type == "timeout":
        return "timeout", f"Prometheus gave up on the query: {text}"
    if status is None:
        return "bad-answer", f"Prometheus failed the query: {text}"
    return "bad-answer", f"Prometheus answered HTTP {status}: {text or '(empty body)'}"


class _NotANumber(Exception):
    """The query's result is a string or a range vector: nothing a threshold can apply to."""


def _parse(data: Any) -> tuple[Series, ...]:
    """The `result` of /api/v1/query: a vector (list of {metric, value}) or a scalar [t, "v"]."""
    if isinstance(data, list) and len(data) == 2 and not isinstance(data[0], dict):
        try:
            return (Series({}, float(data[1])),)  # a scalar
        except ValueError:
            raise _NotANumber("the query returned a string, not a number") from None
    if any("values" in item for item in data):
        raise _NotANumber("the query returned a matrix (range vector), expected a vector or a scalar")
    return tuple(Series(dict(item.get("metric", {})), float(item["value"][1])) for item in data)


class PrometheusSource:
    """A MetricSource backed by prometheus-api-client, safe to call from an event loop.

    Use one instance per event loop (its semaphore belongs to the loop that first waits on it);
    `close()` releases the HTTP connections."""

    def __init__(self, config: PrometheusConfig) -> None:
        self.config = config
        session = requests.Session()
        session.verify = False if config.insecure else (config.ca_file or True)
        if config.cert_file:
            session.cert = (config.cert_file, config.key_file) if config.key_file else config.cert_file
        auth: requests.auth.AuthBase | None = None
        if config.bearer_token or config.bearer_token_file:
            auth = _BearerAuth(config.bearer_token, config.bearer_token_file)
        elif config.username:
            auth = requests.auth.HTTPBasicAuth(config.username, config.password or "")
        # The client raises a string-only exception for a non-200 answer: keep each thread's last
        # response so that errors are classified from its status code and JSON body.
        self._last = threading.local()
        session.hooks["response"].append(self._remember)
        url = config.url.rstrip("/")
        # Retry(0, read=False) is requests' own default: no retries, read timeouts raised as such.
        self._client = PrometheusConnect(url=url, session=session, auth=auth, retry=Retry(0, read=False))
        self._slots = asyncio.Semaphore(config.concurrency)

    def close(self) -> None:
        self._client.close()

    def _remember(self, response: requests.Response, *_: Any, **__: Any) -> None:
        self._last.response = response

    async def query(self, promql: str) -> QueryResult:
        """Run one instant query in a worker thread, at most `concurrency` at a time."""
        await self._slots.acquire()
        try:
            work = asyncio.ensure_future(asyncio.to_thread(self.query_sync, promql))
        except BaseException:
            self._slots.release()
            raise
        work.add_done_callback(lambda _: self._slots.release())
        # shield: if our caller is cancelled the thread still runs to its timeout, holding its slot.
        return await asyncio.shield(work)

    def query_sync(self, promql: str) -> QueryResult:
        """The blocking query with deadline and bounded retries. Never raises."""
        started = time.monotonic()
        deadline = started + self.config.timeout
        attempt = 0
        while True:
            attempt += 1
            outcome = self._attempt(promql, deadline - time.monotonic())
            pause = _BACKOFF * 2 ** (attempt - 1)
            if not outcome.retryable or attempt > self.config.retries or time.monotonic() + pause >= deadline:
                elapsed = time.monotonic() - started
                return QueryResult(outcome.kind, outcome.series, outcome.error, attempt, elapsed)
            time.sleep(pause)

    def _attempt(self, promql: str, remaining: float) -> _Attempt:
        if remaining <= 0:
            return _Attempt("timeout", error=f"no time left within {self.config.timeout:g}s")
        self._last.response = None
        try:
            data = self._client.custom_query(
                promql, params={"timeout": f"{max(int(remaining * 1000), 1)}ms"}, timeout=remaining
            )
            return _Attempt("series", _parse(data))
        except Exception as e:  # never raise: an unexpected failure is an outage, not a crash
            return self._failed(e)

    def _failed(self, exc: Exception) -> _Attempt:
        """What a query that raised `exc` tells: its kind and an error text naming the fault."""
        url, timeout = self.config.url, f"{self.config.timeout:g}s"
        match exc:
            case _NotANumber():
                return _Attempt("query-error", error=str(exc))
            case PrometheusApiClientException():
                kind, text = _classify_http(getattr(self._last, "response", None))
                return _Attempt(kind, error=text)
            case requests.exceptions.ReadTimeout():
                return _Attempt("timeout", error=f"no answer from {url}: timed out after {timeout}")
            case requests.exceptions.JSONDecodeError():
                return _Attempt("bad-answer", error=f"{url} answered invalid JSON ({exc})")
            case requests.exceptions.SSLError():
                return _Attempt("unreachable", error=f"TLS error talking to {url}: {_root(exc)}")
            case requests.exceptions.ConnectTimeout():
                return _Attempt("unreachable", error=f"could not connect to {url} within {timeout}")
            case requests.exceptions.ConnectionError() if _dropped(exc):
                return _Attempt(
                    "unreachable", error=f"{url} closed the connection without an answer", retryable=True
                )
            case requests.exceptions.ConnectionError():
                return _Attempt("unreachable", error=f"cannot connect to {url}: {_root(exc)}", retryable=True)
            case requests.exceptions.RequestException() | OSError():
                return _Attempt("unreachable", error=f"request to {url} failed: {exc}")
            case ValueError() | KeyError() | TypeError() | IndexError():
                return _Attempt("bad-answer", error=f"{url} did not answer like the Prometheus API: {exc!r}")
        return _Attempt("unreachable", error=f"query to {url} failed: {type(exc).__name__}: {exc}")


@dataclass(frozen=True)
class _Attempt:
    kind: QueryKind
    series: tuple[Series, ...] = ()
    error: str = ""
    retryable: bool = False
    """A connection error: nothing reached Prometheus, so trying again costs it nothing."""


def _dropped(exc: requests.exceptions.ConnectionError) -> bool:
    """Whether the connection was made and then closed before an answer (urllib3's ProtocolError:
    "Connection aborted"): "cannot connect" would send the reader the wrong way. It is retried like
    a refused connection, since a pooled keep-alive connection the server closed ends the same way."""
    return bool(exc.args) and isinstance(exc.args[0], urllib3.exceptions.ProtocolError)


def _root(exc: BaseException) -> str:
    """'Connection refused' rather than three layers of requests and urllib3 wrappers."""
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    text = str(reason if reason is not None else exc)
    m = re.search(r"\[Errno -?\d+\] ([^'\])]+)", text)
    return m.group(1).strip() if m else text
