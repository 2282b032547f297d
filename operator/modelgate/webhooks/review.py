"""The checking layer between the webhook's HTTP server and Kopf's admission engine.

Kopf indexes into the AdmissionReview it is given (`request['request']['resource']`, the object's
metadata, the handlers' `body.spec.get`) and trusts the types it finds: a body that is not an
AdmissionReview, or one with a string where a mapping belongs, raised inside Kopf and came back as
an HTTP 500 with no message. The API server itself sends well-formed reviews; anyone who can reach
the port (without --webhook-client-ca) can send anything, and a real client can write any JSON
type into `spec`, which the API server checks against the schema only after the mutating webhooks.

So every body is checked here first, with a pydantic model of the fields Kopf and our handlers
read, and answered:
- not JSON, not an object, or no `request.uid` to answer to: HTTP 400 with a Status naming the
  problem (there is no review to answer in);
- a review whose fields have the wrong shape: a refusal in the review (allowed: false, code 400)
  naming each bad field;
- otherwise Kopf's answer; a webhook error Kopf raises (an unknown resource) becomes a refusal
  with its message, and an unexpected exception is logged with its traceback and refused with
  code 500 (fail closed, and the tests that fuzz this layer fail on any 500).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import aiohttp.web
import kopf
import pydantic
from kopf._core.engines import admission  # its WebhookError is not exported
from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelgate.observe.metrics import WEBHOOK_SECONDS

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 16 * 1024 * 1024
"""An UPDATE's review carries the object twice; the API server takes request bodies of up to 3 MiB
and stores objects of up to 1.5 MiB, so a legitimate review stays well below this."""
MAX_MESSAGE: Final = 1024

WebhookFn = Callable[..., Awaitable[Mapping[str, Any]]]


class _Shape(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Resource(_Shape):
    group: str
    version: str
    resource: str


class _UserInfo(_Shape):
    username: str
    uid: str | None = None
    groups: list[str] | None = None
    extra: dict[str, list[str]] | None = None


class _Metadata(_Shape):
    name: str | None = None
    generateName: str | None = None
    namespace: str | None = None
    uid: str | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    deletionTimestamp: str | None = None


class _Object(_Shape):
    """What Kopf reads of an object. Not `spec`: a client may write any JSON type there, and the
    handlers answer that themselves, naming the field (the API server's schema check comes after
    the mutating webhooks)."""

    apiVersion: str | None = None
    kind: str | None = None
    metadata: _Metadata = Field(default_factory=_Metadata)


class _Request(_Shape):
    uid: str = Field(min_length=1)
    resource: _Resource
    subResource: str | None = None
    operation: Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]
    userInfo: _UserInfo
    name: str | None = None
    namespace: str | None = None
    dryRun: bool | None = None
    object: _Object | None = None
    oldObject: _Object | None = None

    @model_validator(mode="after")
    def _objects_for_the_operation(self) -> _Request:
        needed = {"CREATE": ("object",), "UPDATE": ("object", "oldObject"), "DELETE": ("oldObject",)}
        missing = [k for k in needed.get(self.operation, ("object",)) if getattr(self, k) is None]
        if missing:
            raise ValueError(f"{' and '.join(missing)} required for {self.operation}")
        return self


class _Review(_Shape):
    apiVersion: Literal["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]
    kind: Literal["AdmissionReview"]
    request: _Request


@dataclass(frozen=True)
class Answer:
    """What the HTTP server sends back: a status code and a JSON body."""

    status: int
    body: Mapping[str, Any]


def _bad_request(message: str) -> Answer:
    status = {"apiVersion": "v1", "kind": "Status", "status": "Failure", "code": 400}
    return Answer(400, {**status, "reason": "BadRequest", "message": _clip(message)})


def _clip(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 3] + "..."


def refusal(data: Mapping[str, Any], code: int, message: str) -> Answer:
    """A review answer that refuses the request with `message`."""
    request = data.get("request") or {}
    version = data.get("apiVersion")
    return Answer(
        200,
        {
            "apiVersion": version
            if version in ("admission.k8s.io/v1", "admission.k8s.io/v1beta1")
            else "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "response": {
                "uid": request.get("uid", ""),
                "allowed": False,
                "status": {"code": code, "message": _clip(message)},
            },
        },
    )


def describe_errors(error: pydantic.ValidationError) -> str:
    """`loc: msg` per error, without the input values (which may be huge)."""
    parts = []
    for e in error.errors(include_url=False, include_input=False):
        where = ".".join(str(p) for p in e["loc"]) or "body"
        parts.append(f"{where}: {e['msg']}")
    return "; ".join(parts)


async def answer(
    fn: WebhookFn,
    raw: bytes,
    *,
    webhook: str | None = None,
    headers: Mapping[str, str] | None = None,
    sslpeer: Mapping[str, Any] | None = None,
) -> Answer:
    """Answer one admission request body (the HTTP server's whole job, without the HTTP)."""
    if len(raw) > MAX_BODY_BYTES:
        return _bad_request(f"the request body is {len(raw)} bytes, more than {MAX_BODY_BYTES}")
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError is a ValueError
        return _bad_request(f"the request body is not JSON: {e}")
    request = data.get("request") if isinstance(data, dict) else None
    if not isinstance(request, dict) or not isinstance(request.get("uid"), str) or not request["uid"]:
        return _bad_request("not an AdmissionReview: an object with request.uid is expected")
    try:
        _Review.model_validate(data)
    except pydantic.ValidationError as e:
        return refusal(data, 400, f"malformed AdmissionReview: {describe_errors(e)}")
    try:
        response = await _reviewed(fn, data, webhook, headers, sslpeer)
    except admission.WebhookError as e:  # no handler for the resource, or an ambiguous one
        return refusal(data, 400, f"modelgate's webhook cannot review this request: {e}")
    except Exception as e:
        logger.exception(f"Failed to review an admission request: webhook={webhook} uid={request['uid']}")
        return refusal(
            data, 500, f"modelgate's webhook failed to review the request ({type(e).__name__}: {e})"
        )
    return Answer(200, response)


REREADS: Final = 3


async def _reviewed(
    fn: WebhookFn,
    data: Any,
    webhook: str | None,
    headers: Mapping[str, str] | None,
    sslpeer: Mapping[str, Any] | None,
) -> Mapping[str, Any]:
    """Kopf's answer. The handlers run on the webhook server's thread (webhooks/thread.py) and read
    Kopf's indexes, which the operator's loop updates meanwhile: a reading that met an index changing
    under it ("dictionary changed size during iteration", "... keys changed during iteration") is
    made again (a review only computes its answer, so it can be repeated)."""
    attempts = 0
    while True:
        try:
            return await fn(data, webhook=webhook, headers=dict(headers or {}), sslpeer=dict(sslpeer or {}))
        except RuntimeError as e:
            attempts += 1
            if "during iteration" not in str(e) or attempts > REREADS:
                raise


class CheckedWebhookServer(kopf.WebhookServer):
    """Kopf's webhook server, with every request body answered by `answer` (Kopf's own reading of
    the body trusts it, and its aiohttp application refuses bodies over 1 MiB, which an UPDATE of a
    large object exceeds)."""

    @staticmethod
    async def _serve(fn: WebhookFn, request: aiohttp.web.Request) -> aiohttp.web.Response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > MAX_BODY_BYTES:
                return _response(_bad_request(f"the request body is more than {MAX_BODY_BYTES} bytes"))
            chunks.append(chunk)
        transport = request.transport
        peer = transport.get_extra_info("peercert") if transport is not None else None
        webhook = request.match_info.get("id")
        with WEBHOOK_SECONDS.labels(webhook or "").time():
            result = await answer(
                fn, b"".join(chunks), webhook=webhook, headers=dict(request.headers), sslpeer=peer
            )
        return _response(result)


def _response(result: Answer) -> aiohttp.web.Response:
    return aiohttp.web.json_response(dict(result.body), status=result.status)
