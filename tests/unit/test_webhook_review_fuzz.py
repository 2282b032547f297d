"""AdmissionReview bodies, well-formed and not, through the webhook's checking layer into Kopf's
real admission engine and our handlers, with no HTTP and no cluster.

Whatever the body, the answer is a Status (HTTP 400) or a review answering the request's uid; a
refusal always carries a message; nothing raises and nothing is answered with code 500 (a 500 is
what an exception inside Kopf or a handler becomes). Objects come from the CRD schemas
(tests/support/schemas.py), valid and invalid; the envelope is broken field by field.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import functools
import json
from collections.abc import Callable
from typing import Any

import kopf
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kopf._cogs.structs import references
from kopf._core.engines import admission
from kopf._core.reactor import inventory

import modelgate.webhooks.handlers  # noqa: F401  (registers the admission handlers)
from modelgate.act.keys import KeyStore
from modelgate.config import OperatorConfig
from modelgate.decide.seal import KeyRing, Signer
from modelgate.webhooks.review import MAX_BODY_BYTES, MAX_MESSAGE, Answer, answer
from tests.support import schemas
from tests.unit.factories import NAMESPACE, make_deployment

HOOKS = {
    "stamp-approval": "ModelApproval",
    "validate-approval": "ModelApproval",
    "stamp-evaluation": "ModelEvaluation",
    "validate-evaluation": "ModelEvaluation",
    "stamp-deployment": "ModelDeployment",
}
FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def resources() -> set[references.Resource]:
    return {
        references.Resource(
            group=crd.group, version=crd.version, plural=crd.plural, kind=crd.kind, namespaced=crd.namespaced
        )
        for crd in schemas.crds().values()
        if crd.kind in HOOKS.values()
    }


def indices() -> dict[str, Any]:
    """Kopf's indexes as the handlers read them (plain dicts of lists), with one ModelDeployment."""
    md = make_deployment()
    raw = md.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {
        "modeldeployments": {(NAMESPACE, md.name): [raw]},
        "deployments_by_digest": {
            (NAMESPACE, md.spec.model.digest): [{"name": md.name, "digestSetBy": "dave", "riskLevel": "high"}]
        },
        "policies": {},
        "namespaces": {NAMESPACE: [{}]},
    }


@functools.cache
def engine() -> Callable[..., Any]:
    """Kopf's own admission function, bound the way Kopf binds it for its webhook server."""
    insights = references.Insights()
    insights.webhook_resources.update(resources())
    return functools.partial(
        admission.serve_admission_request,
        settings=kopf.OperatorSettings(),
        registry=kopf.get_default_registry(),
        insights=insights,
        memories=inventory.ResourceMemories(),
        memobase=kopf.Memo(
            config=OperatorConfig(),
            keys=KeyStore(lambda: None, "modelgate-system", KeyRing((Signer.generate(),))),
        ),
        indices=indices(),
    )


def review(raw: bytes, webhook: str) -> Answer:
    return asyncio.run(answer(engine(), raw, webhook=webhook))


def check(result: Answer, sent: Any) -> None:
    """The invariants of every answer."""
    assert result.status in (200, 400), result
    body = result.body
    if result.status == 400:
        assert body["kind"] == "Status" and body["message"], body
        return
    response = body["response"]
    assert response["uid"] == sent["request"]["uid"]
    if not response["allowed"]:
        status = response.get("status") or {}
        assert status.get("message"), body
        assert len(status["message"]) <= MAX_MESSAGE
        assert status.get("code") != 500, status["message"]
    if "patch" in response:
        assert isinstance(json.loads(base64.b64decode(response["patch"])), list)


# --- strategies ------------------------------------------------------------------------------------

USERS = st.fixed_dictionaries(
    {"username": st.sampled_from(["bob", "alice", "system:admin", "ü" * 300])},
    optional={
        "groups": st.lists(st.sampled_from(["ethics-board", "deployers", "x"]), max_size=3),
        "uid": st.text(max_size=5),
    },
)


def objects(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Manifests of `kind`, valid or not, in the test namespace."""
    manifests = st.one_of(
        schemas.valid_manifest(kind), schemas.invalid_manifest(kind).map(lambda i: i.manifest)
    )

    def place(m: dict[str, Any]) -> dict[str, Any]:
        return {**m, "metadata": {**m["metadata"], "namespace": NAMESPACE}}

    return manifests.map(place)


@st.composite
def reviews(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A well-formed AdmissionReview for one of our webhooks."""
    webhook = draw(st.sampled_from(sorted(HOOKS)))
    kind = HOOKS[webhook]
    crd = schemas.crds()[kind]
    operation = draw(st.sampled_from(["CREATE", "UPDATE"]))
    new = draw(objects(kind))
    request: dict[str, Any] = {
        "uid": draw(st.uuids()).hex,
        "kind": {"group": crd.group, "version": crd.version, "kind": kind},
        "resource": {"group": crd.group, "version": crd.version, "resource": crd.plural},
        "operation": operation,
        "userInfo": draw(USERS),
        "namespace": NAMESPACE,
        "name": new["metadata"]["name"],
        "object": new,
        "dryRun": draw(st.booleans()),
    }
    if operation == "UPDATE":
        request["oldObject"] = draw(st.one_of(st.just(copy.deepcopy(new)), objects(kind)))
    return webhook, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request}


JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.just("x" * 20_000),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
PATHS = [
    ("apiVersion",),
    ("kind",),
    ("request",),
    ("request", "uid"),
    ("request", "resource"),
    ("request", "resource", "resource"),
    ("request", "resource", "group"),
    ("request", "operation"),
    ("request", "userInfo"),
    ("request", "userInfo", "username"),
    ("request", "userInfo", "groups"),
    ("request", "userInfo", "extra"),
    ("request", "object"),
    ("request", "oldObject"),
    ("request", "namespace"),
    ("request", "dryRun"),
    ("request", "object", "metadata"),
    ("request", "object", "metadata", "name"),
    ("request", "object", "metadata", "finalizers"),
    ("request", "object", "metadata", "labels"),
    ("request", "object", "spec"),
    ("request", "object", "spec", "model"),
    ("request", "object", "spec", "model", "digest"),
    ("request", "oldObject", "spec"),
]


@st.composite
def broken(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A review with one to three fields removed or replaced by JSON of another type."""
    webhook, body = draw(reviews())
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS))
        node: Any = body
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if draw(st.booleans()):
            node.pop(path[-1], None)
        else:
            node[path[-1]] = draw(JUNK)
    return webhook, body


# --- tests -----------------------------------------------------------------------------------------


@FUZZ
@given(reviews())
def test_well_formed_reviews_are_answered_for_their_uid_and_refusals_say_why(case: tuple[str, Any]) -> None:
    webhook, body = case
    check(review(json.dumps(body).encode(), webhook), body)


@FUZZ
@given(broken())
def test_broken_reviews_are_refused_with_a_message_never_a_server_error(case: tuple[str, Any]) -> None:
    webhook, body = case
    result = review(json.dumps(body).encode(), webhook)

    check(result, body)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"\xff\xfe not utf-8",
        b"null",
        b"[]",
        b'"AdmissionReview"',
        b"{}",
        b'{"request": null}',
        b'{"request": {"uid": 5}}',
        b'{"request": {"uid": ""}}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"request": {"uid": "' + b"u" * 100 + b'"}, "x": ' + b"1" * 5000 + b"}",
    ],
    ids=[
        "empty",
        "truncated",
        "not-utf8",
        "null",
        "list",
        "string",
        "empty-object",
        "request-null",
        "uid-number",
        "uid-empty",
        "deep-nesting",
        "huge-number",
    ],
)
def test_bodies_that_are_no_review_get_a_bad_request_status_with_a_message(raw: bytes) -> None:
    result = review(raw, "stamp-approval")

    if result.status == 200:  # a uid to answer to: a refusal in the review
        assert result.body["response"]["allowed"] is False
        assert result.body["response"]["status"]["message"]
    else:
        assert result.status == 400 and result.body["message"]


def test_a_body_over_the_limit_is_refused_before_it_is_parsed() -> None:
    result = review(b" " * (MAX_BODY_BYTES + 1), "stamp-approval")

    assert result.status == 400 and "more than" in result.body["message"]


def valid_approval_review(**request: Any) -> dict[str, Any]:
    body = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "resource": {"group": "modelgate.io", "version": "v1alpha1", "resource": "modelapprovals"},
            "operation": "CREATE",
            "userInfo": {"username": "bob", "groups": ["ethics-board"]},
            "namespace": NAMESPACE,
            "object": {
                "apiVersion": "modelgate.io/v1alpha1",
                "kind": "ModelApproval",
                "metadata": {"name": "a", "namespace": NAMESPACE},
                "spec": {
                    "model": {"name": "fraud-detector", "version": "1.0.0", "digest": "sha256:" + "ab" * 32},
                    "role": "ethics-board",
                    "decision": "approved",
                },
            },
        },
    }
    body["request"].update(request)
    return body


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"userInfo": None}, "request.userInfo"),
        ({"object": None}, "object required for CREATE"),
        ({"operation": "PATCH"}, "request.operation"),
        ({"resource": {"group": "apps", "version": "v1", "resource": "deployments"}}, "has no handlers"),
        ({"userInfo": {"groups": ["x"]}}, "request.userInfo.username"),
    ],
    ids=["no-userinfo", "object-null", "unknown-operation", "other-resource", "no-username"],
)
def test_each_malformed_field_is_named_in_the_refusal(change: dict[str, Any], named: str) -> None:
    body = valid_approval_review(**change)
    result = review(json.dumps(body).encode(), "stamp-approval")

    assert result.status == 200 and result.body["response"]["allowed"] is False
    assert named in result.body["response"]["status"]["message"]


@pytest.mark.parametrize(
    ("spec_change", "named"),
    [
        ({"model": "fraud-detector"}, "spec.model: Input should be"),
        ({"model": {"name": "fraud-detector", "version": "1.0.0"}}, "spec.model.digest: Field required"),
        ({"decision": "maybe"}, "spec.decision"),
        ({"expiresAt": "2026-01-02T03:04:05+99:99"}, "spec.expiresAt"),
        ({"expiresAt": 12345}, "spec.expiresAt"),
    ],
    ids=["model-a-string", "no-digest", "bad-decision", "unreadable-date", "date-a-number"],
)
def test_malformed_new_evidence_is_left_to_the_schema_check_and_refused_past_it_naming_the_field(
    spec_change: dict[str, Any], named: str
) -> None:
    """The mutating webhook neither looks a revision up ("no ModelDeployment requests ...") nor
    stamps; the validating one names the field, should the schema have let it through."""
    body = valid_approval_review()
    body["request"]["object"]["spec"].update(spec_change)
    stamped = review(json.dumps(body).encode(), "stamp-approval").body["response"]
    validated = review(json.dumps(body).encode(), "validate-approval").body["response"]

    assert stamped["allowed"] is True and "patch" not in stamped
    assert validated["allowed"] is False and validated["status"]["code"] == 422
    assert named in validated["status"]["message"]


def test_well_formed_evidence_without_a_revision_gets_the_one_requested_revision() -> None:
    body = valid_approval_review()
    body["request"]["object"]["spec"]["model"]["digest"] = make_deployment().spec.model.digest
    result = review(json.dumps(body).encode(), "stamp-approval")

    response = result.body["response"]
    assert response["allowed"] is True
    ops = json.loads(base64.b64decode(response["patch"]))
    assert any(op["path"].startswith("/spec/model") for op in ops), ops
