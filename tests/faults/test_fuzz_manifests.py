"""Fuzzed manifests against the real API server, its admission webhooks and the running operator.

Manifests come from the CRD schemas (tests/support/schemas.py). Valid ones are accepted (server-side
dry run through every webhook: nothing is stored, cluster-scoped policies select nobody); invalid
ones are refused with a message that names the broken field, whether the API server's schema check
or the webhook (which reads new evidence with its model first) refuses them. Evidence is sent
without a revision where the violation allows, the case where the webhook used to look up a
revision for a malformed model reference and answer "no ModelDeployment requests ..." or a 500.

Then fuzzed objects are stored for real, with a policy selecting only this module's namespace, and
the operator must stay alive, give each a settled status (Ready present, observedGeneration
current), write nothing more once settled (checked after a later model has been decided, so the
operator had the time to churn) and log no error storm. Big and strange input last: 10,000-character
strings, unicode names, 256 references, deep nesting in the card, a review over 1 MiB.

Hypothesis runs without shrinking here (each example is a round trip to the API server); a failure
prints the example as generated.
"""

from __future__ import annotations

import copy
import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.support import schemas
from tests.support.api import Answer, Api
from tests.support.kube import Cluster, Kubectl, condition, create_test_namespace, wait_until
from tests.support.manifests import model_deployment
from tests.support.operator import OperatorProcess

pytestmark = pytest.mark.integration

KINDS = sorted(schemas.crds())
EVIDENCE = {"ModelApproval", "ModelEvaluation"}
FAST = settings(
    max_examples=12,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
REVISION = "0123456789abcdef0123456789abcdef"
STAMPED = {("spec", f) for f in ("approvedBy", "submittedBy", "seal", "digestSetBy")}
"""Fields the mutating webhook writes over whatever the client sent (unknown fields in them are
refused before, when the body is decoded)."""


@pytest.fixture(scope="module")
def api(cluster: Cluster) -> Api:
    return Api(cluster.kubeconfig)


@pytest.fixture(scope="module")
def fuzz_ns(kubectl: Kubectl, operator: OperatorProcess) -> Iterator[str]:
    """One namespace for the module, watched by the session operator (t-*)."""
    name = f"t-fuzz-{uuid.uuid4().hex[:6]}"
    create_test_namespace(kubectl, name)
    yield name
    kubectl(
        "delete", "governancepolicy", "-l", f"fuzz={name}", "--ignore-not-found", "--wait=false", check=False
    )
    kubectl("delete", "namespace", name, "--wait=false", check=False)


def send(api: Api, manifest: dict[str, Any], ns: str, **kw: Any) -> Answer:
    crd = schemas.crds()[manifest.get("kind") or "ModelDeployment"]
    return api.create(
        manifest,
        plural=crd.plural,
        namespace=ns if crd.namespaced else None,
        api_version=crd.api_version,
        **kw,
    )


def names(message: str, field: str) -> bool:
    """The message names the field, as the API server spells it (spec.a[0].b) or pydantic (spec.a.0.b)."""
    return field in message or re.sub(r"\[(\d+)\]", r".\1", field) in message


# --- valid and invalid, through the schema and the webhooks ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(data=st.data())
def test_valid_manifests_are_accepted(kind: str, api: Api, fuzz_ns: str, data: st.DataObject) -> None:
    manifest = data.draw(schemas.valid_manifest(kind))
    if kind in EVIDENCE:
        manifest["spec"]["model"].setdefault("revision", REVISION)  # no deployment to take one from

    answer = send(api, manifest, fuzz_ns, dry_run=True)

    assert answer.code == 201, f"{answer.code} {answer.message}\n{json.dumps(manifest)[:3000]}"


@pytest.mark.parametrize("kind", KINDS)
@FAST
@given(data=st.data())
def test_invalid_manifests_are_refused_naming_the_field(
    kind: str, api: Api, fuzz_ns: str, data: st.DataObject
) -> None:
    inv = data.draw(schemas.invalid_manifest(kind))
    manifest = inv.manifest
    model = (manifest.get("spec") or {}).get("model") if isinstance(manifest.get("spec"), dict) else None
    replaced = inv.path[:2] in STAMPED and inv.violation.rule != "unknown"
    if kind in EVIDENCE and isinstance(model, dict) and "revision" not in inv.field:
        if replaced:
            model.setdefault("revision", REVISION)
        else:
            model.pop("revision", None)  # the webhook must not look a revision up for a malformed spec

    answer = send(api, manifest, fuzz_ns, dry_run=True)

    if replaced:  # the webhook overwrites what the client wrote there, whatever it was
        assert answer.code == 201, f"{inv.violation}: {answer.message}"
        assert answer.body["spec"][inv.path[1]] != manifest["spec"].get(inv.path[1])
        return
    assert answer.code in (400, 422), f"{inv.violation} at {inv.field} was accepted ({answer.code})"
    assert names(answer.message, inv.field), f"{inv.violation}: {inv.field} not in: {answer.message}"
    assert "no ModelDeployment" not in answer.message


def test_invalid_evidence_without_a_revision_names_the_field_even_when_a_deployment_exists(
    api: Api, kubectl: Kubectl, fuzz_ns: str
) -> None:
    md = model_deployment("fz-model", fuzz_ns)
    kubectl.apply(md)
    approval = {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": "ModelApproval",
        "metadata": {"name": "fz-bad-approval"},
        "spec": {"model": {**md["spec"]["model"]}, "role": "r" * 64, "decision": "approved"},
    }
    approval["spec"]["model"].pop("uri")

    refused = send(api, approval, fuzz_ns, dry_run=True)
    approval["spec"]["role"] = "ethics-board"
    accepted = send(api, approval, fuzz_ns, dry_run=True)

    assert refused.code == 422 and "spec.role" in refused.message, refused.message
    assert accepted.code == 201, accepted.message
    assert len(accepted.body["spec"]["model"]["revision"]) == 32  # filled in from the deployment


# --- what got in: the operator stays alive and settles ---------------------------------------------


AS: dict[str, dict[str, Any]] = {
    "GovernancePolicy": {},
    "ModelDeployment": {"as_user": "alice", "as_groups": ("deployers",)},
    "ModelApproval": {"as_user": "bob", "as_groups": ("ethics-board",)},
    "ModelEvaluation": {"as_user": "erin", "as_groups": ("evaluators",)},
}
"""Who creates what: the people of tests/support/test-users.yaml, so separation of duties holds."""


def settled(kubectl: Kubectl, ns: str, name: str) -> dict[str, Any] | None:
    obj = kubectl.get("modeldeployment", name, ns)
    if not obj:
        return None
    status = obj.get("status") or {}
    current = status.get("observedGeneration") == obj["metadata"]["generation"]
    return obj if current and condition(obj, "Ready") else None


def operator_errors(operator: OperatorProcess, ns: str) -> list[str]:
    """The operator's error lines about objects of `ns`, admission refusals aside (Kopf logs a
    refused request at error level; that is an answer, not a failure)."""
    out = []
    for line in operator.log.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        message = str(entry.get("message", ""))
        if (
            entry.get("severity") in ("error", "critical")
            and ns in line
            and not message.startswith("Webhook")
        ):
            out.append(message[:300])
    return out


def stored_objects(draw: st.DrawFn, ns: str) -> list[dict[str, Any]]:
    """A policy selecting only `ns`, three ModelDeployments, and evidence naming their models."""
    tag = uuid.uuid4().hex[:6]
    policy = draw(schemas.valid_manifest("GovernancePolicy"))
    policy["metadata"] = {"name": f"fz-{tag}", "labels": {"fuzz": ns}}
    policy["spec"]["namespaceSelector"] = {"matchLabels": {"modelgate.io/test": ns}}
    out = [policy]
    for i in range(3):
        md = draw(schemas.valid_manifest("ModelDeployment"))
        md["metadata"]["name"] = f"fz-{tag}-{i}"
        out.append(md)
        for kind in ("ModelApproval", "ModelEvaluation"):
            ev = draw(schemas.valid_manifest(kind))
            ev["metadata"]["name"] = f"fz-{tag}-{i}-{kind[5:].lower()}"
            ev["spec"]["model"] = {k: md["spec"]["model"][k] for k in ("name", "version", "digest")}
            out.append(ev)
    return out


@settings(
    max_examples=2,
    deadline=None,
    phases=(Phase.explicit, Phase.generate),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_stored_fuzzed_objects_are_decided_once_and_leave_the_operator_quiet(
    api: Api, kubectl: Kubectl, operator: OperatorProcess, fuzz_ns: str, data: st.DataObject
) -> None:
    objects = data.draw(st.composite(lambda draw: stored_objects(draw, fuzz_ns))())
    for obj in sorted(objects, key=lambda o: o["kind"] in EVIDENCE):
        # Evidence takes its revision from the deployment, once the webhook's index has seen it.
        answer = wait_until(
            f"{obj['kind']} {obj['metadata']['name']} created",
            lambda obj=obj: (
                a
                if "no ModelDeployment" not in (a := send(api, obj, fuzz_ns, **AS[obj["kind"]])).message
                else None
            ),
            timeout=30,
        )
        assert answer.code == 201, f"{obj['kind']} {obj['metadata']['name']}: {answer.message}"
    models = [o["metadata"]["name"] for o in objects if o["kind"] == "ModelDeployment"]

    decided = {
        n: wait_until(f"ModelDeployment {n} decided", lambda n=n: settled(kubectl, fuzz_ns, n))
        for n in models
    }
    versions = {n: obj["metadata"]["resourceVersion"] for n, obj in decided.items()}
    marker = model_deployment(f"marker-{uuid.uuid4().hex[:5]}", fuzz_ns)
    kubectl.apply(marker)
    wait_until("a later model decided", lambda: settled(kubectl, fuzz_ns, marker["metadata"]["name"]))
    after = {
        n: (kubectl.get("modeldeployment", n, fuzz_ns) or {}).get("metadata", {}).get("resourceVersion")
        for n in models
    }

    assert operator.proc.poll() is None, "the operator exited"
    assert after == versions, "a settled ModelDeployment was written again (status churn)"
    errors = operator_errors(operator, fuzz_ns)
    assert len(errors) <= len(models), "\n".join(errors[-10:])


# --- big and strange input -------------------------------------------------------------------------


def md_with(ns: str, change: Any) -> dict[str, Any]:
    md = model_deployment(f"fz-big-{uuid.uuid4().hex[:5]}", ns)
    change(md)
    return md


BIG = "x" * 10_000


@pytest.mark.parametrize(
    ("what", "change", "field"),
    [
        (
            "10k-character intended use",
            lambda m: m["spec"]["card"].update(intendedUse=BIG),
            "spec.card.intendedUse",
        ),
        ("10k-character name", lambda m: m["metadata"].update(name="a" * 10_000), "metadata.name"),
        ("unicode object name", lambda m: m["metadata"].update(name="modèle-🤖"), "metadata.name"),
        ("unicode model name", lambda m: m["spec"]["model"].update(name="modèle"), "spec.model.name"),
        (
            "256 approvals",
            lambda m: m["spec"].update(approvals=[{"name": f"a{i}"} for i in range(256)]),
            "spec.approvals",
        ),
        (
            "256 evaluations",
            lambda m: m["spec"].update(evaluations=[{"name": f"e{i}"} for i in range(256)]),
            "spec.evaluations",
        ),
        (
            "deep nesting in the card",
            lambda m: m["spec"]["card"].update(extra=nested(200)),
            "spec.card.extra",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) and " " in v else "",
)
def test_big_and_strange_input_is_refused_naming_the_field(
    api: Api, fuzz_ns: str, what: str, change: Any, field: str
) -> None:
    answer = send(api, md_with(fuzz_ns, change), fuzz_ns, dry_run=True)

    assert answer.code in (400, 422), f"{what}: {answer.code}"
    assert field in answer.message, f"{what}: {answer.message[:500]}"


def nested(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {"leaf": True}
    for _ in range(depth):
        node = {"a": node}
    return node


def test_deep_nesting_in_the_card_is_pruned_when_unknown_fields_are_ignored(api: Api, fuzz_ns: str) -> None:
    md = md_with(fuzz_ns, lambda m: m["spec"]["card"].update(extra=nested(200)))

    answer = send(api, md, fuzz_ns, dry_run=True, strict=False)

    assert answer.code == 201, answer.message
    assert "extra" not in answer.body["spec"]["card"]


def test_big_and_unicode_values_the_schema_allows_are_stored_and_decided(
    api: Api, kubectl: Kubectl, operator: OperatorProcess, fuzz_ns: str
) -> None:
    def change(m: dict[str, Any]) -> None:
        m["spec"]["card"].update(owner="Zoë Ångström 🤖 <zoe@example.com>", intendedUse="ü" * 4096)
        m["spec"]["serving"]["env"] = [
            {"name": "NOTE", "value": BIG},
            {"name": "GREETING", "value": "こんにちは"},
        ]

    md = md_with(fuzz_ns, change)
    answer = send(api, md, fuzz_ns)
    assert answer.code == 201, answer.message

    decided = wait_until(
        "the big ModelDeployment decided", lambda: settled(kubectl, fuzz_ns, md["metadata"]["name"])
    )
    assert decided["spec"]["card"]["owner"] == md["spec"]["card"]["owner"]
    assert operator.proc.poll() is None


def test_a_review_over_one_mebibyte_is_answered(api: Api, fuzz_ns: str) -> None:
    """An object of ~1.3 MiB: its review is larger than the 1 MiB Kopf's server read by default."""
    md = md_with(
        fuzz_ns,
        lambda m: m["spec"]["serving"].update(
            env=[{"name": f"V{i}", "value": "v" * 32_000} for i in range(42)]
        ),
    )

    answer = send(api, copy.deepcopy(md), fuzz_ns, dry_run=True)

    assert answer.code == 201, answer.message[:500]
    assert answer.body["spec"]["digestSetBy"]["username"]  # the mutating webhook did answer
