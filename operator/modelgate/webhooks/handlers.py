"""Admission handlers: identity stamping, sealing, immutability and early refusals.

Identities come from the authenticated request (`userInfo`), never from what the client wrote,
the way the API server fills a CertificateSigningRequest's username:
- ModelApproval `spec.approvedBy` and ModelEvaluation `spec.submittedBy` are set on CREATE and
  sealed (the admission seal: an Ed25519 signature over the stamped spec and the time, see
  decide/seal.py; the operator binds it to the object's name and uid once created); on UPDATE
  the stored values are put back, so neither can be changed after creation.
- Evidence covers one revision (`spec.model.revision`, decide/revision.py). When a client creates
  evidence without one, the webhook fills it in from the ModelDeployment(s) in the namespace that
  request this model name, version and digest, before sealing (so the seal covers it): the approver
  approves what is deployed without computing ids. None or several distinct revisions: refused,
  saying how to name one. A revision the client gives is kept as is.
- ModelDeployment `spec.digestSetBy` records who set `spec.model.digest`: set on CREATE and on any
  UPDATE that changes the digest, restored from the stored object otherwise, and removed when the
  stored object has none (an object written past the webhook): it is never the client's word, whether
  the client updates, replaces or server-side applies; a written value that is not kept is
  answered with an admission warning saying so. A ModelDeployment is
  also created with modelgate's finalizer, so that the operator need not patch it in afterwards
  (one write, one watch event and one round trip less before its first decision; Kopf still adds
  it to objects created while the webhooks were not registered).
Stamped fields are replaced wholesale (a patch transformation, not a merge), so nothing a client
wrote into them survives.

Validation refuses, with the rule named: changing an approval or evaluation after creation, an
approval by the identity that set that digest when a selecting policy demands separation of duties,
and a ModelDeployment whose serving resources request more than their limit (`resource_problems`:
the Deployment rendered from it would be refused; what else the API server refuses in a rendered
object is reported by the operator as ServingObjectInvalid).

The mutating webhooks run before the API server checks the schema, so they see whatever JSON a
client wrote. New evidence is read strictly with its pydantic model first; when it is malformed
the webhook changes nothing and the schema check that follows refuses it, naming the field (a
malformed model reference used to be answered "no ModelDeployment requests ..." or with a server
error). The validating webhook refuses new approvals the model cannot read, so nothing the operator
could not read is sealed where the schema and the model differ. A ModelDeployment spec that is
not an object is likewise left to the schema check.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

import kopf
import kubernetes
import pydantic
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.utils import parse_quantity

from modelgate.act import kube as act_kube
from modelgate.api.v1alpha1 import (
    FINALIZER,
    GROUP,
    VERSION,
    ModelApprovalSpec,
    ModelDeployment,
    ModelEvaluationSpec,
)
from modelgate.decide import seal
from modelgate.decide.policy import parse_policies, select_policies
from modelgate.decide.revision import requested_revision_id
from modelgate.observe.snapshot import digest_summary, first, index_policy

STAMPED = {"ModelApproval": "approvedBy", "ModelEvaluation": "submittedBy"}
KINDS = {"modelapprovals": "ModelApproval", "modelevaluations": "ModelEvaluation"}
SPECS: dict[str, type[ModelApprovalSpec] | type[ModelEvaluationSpec]] = {
    "ModelApproval": ModelApprovalSpec,
    "ModelEvaluation": ModelEvaluationSpec,
}


def spec_of(body: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The object's spec when it is an object, else None (a client may send any JSON type)."""
    spec = body.get("spec") if body is not None else None
    return spec if isinstance(spec, Mapping) else None


def evidence_problems(kind: str, body: Mapping[str, Any]) -> str | None:
    """What is wrong with the spec of new evidence, read strictly with its model as the schema
    types it (the fields the webhook writes aside), naming each field; None when nothing is."""
    spec = spec_of(body)
    if spec is None:
        return "spec: must be an object"
    written = {k: v for k, v in spec.items() if k not in (STAMPED[kind], "seal")}
    try:
        # Strict JSON reading, as the schema types it: a number is no date-time here.
        SPECS[kind].model_validate_json(json.dumps(written), strict=True)
    except pydantic.ValidationError as e:
        return "; ".join(
            f"spec.{'.'.join(str(p) for p in err['loc'])}: {err['msg']}"
            for err in e.errors(include_url=False, include_input=False)
        )
    return None


def identity(userinfo: Mapping[str, Any]) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "username": str(userinfo.get("username", "")),
        "groups": list(userinfo.get("groups") or []),
    }
    if userinfo.get("uid"):
        ident["uid"] = str(userinfo["uid"])
    return ident


def _set_spec_fields(patch: kopf.Patch, fields: Mapping[str, Any]) -> None:
    """Replace spec fields wholesale in the admission response (not a recursive merge)."""

    def apply(body: Any) -> None:
        body.setdefault("spec", {}).update(fields)

    patch.fns.append(apply)


def _remove_spec_field(patch: kopf.Patch, field: str) -> None:
    """Drop a spec field the client wrote: Kopf diffs the transformed body against the request's
    object, so the admission response carries a JSON patch `remove` for it."""

    def apply(body: Any) -> None:
        (body.get("spec") or {}).pop(field, None)

    patch.fns.append(apply)


def _add_finalizer(patch: kopf.Patch) -> None:
    def apply(body: Any) -> None:
        finalizers = body.setdefault("metadata", {}).setdefault("finalizers", [])
        if FINALIZER not in finalizers:
            finalizers.append(FINALIZER)

    patch.fns.append(apply)


async def _stamp(
    kind: str,
    body: kopf.Body,
    patch: kopf.Patch,
    userinfo: Mapping[str, Any],
    operation: str | None,
    old: kopf.Body | None,
    memo: kopf.Memo,
    indexes: Mapping[str, Any],
) -> None:
    field = STAMPED[kind]
    if operation == "UPDATE" and old is not None:
        stored = spec_of(old) or {}
        kept = {k: stored[k] for k in (field, "seal") if stored.get(k) is not None}
        if spec_of(body) is not None:  # else the schema check refuses it
            _set_spec_fields(patch, kept)
        return
    written = spec_of(body)
    if written is None or evidence_problems(kind, body):
        return  # the schema check after the mutating webhooks refuses it, naming the field
    ns = body.metadata.get("namespace") or ""
    model = dict(written["model"])
    filled: dict[str, Any] = {}
    if not model.get("revision"):
        seen = await deployments_seen(ns, memo, indexes)
        if not requested_revisions(ns, model, seen) and watched(ns, memo):
            # The indexes follow the API server by a watch event: a ModelDeployment created a moment
            # ago (`kubectl apply -f model.yaml -f approval.yaml`) may not be in them yet.
            with contextlib.suppress(kopf.AdmissionError):  # unreadable: the indexes' refusal stands
                seen = {**indexes, **await read_live(ns)}
        model["revision"] = revision_for(ns, model, seen)
        filled["model"] = model
    spec = {**dict(written), **filled, field: identity(userinfo)}
    signer = memo["keys"].keys.signer
    if signer is None:  # every replica holds a key from its start: the Secret was emptied by hand
        raise kopf.AdmissionError("modelgate holds no signing key: see `modelgate keys list`", code=503)
    spec["seal"] = seal.admission_seal(signer, kind, ns, spec, dt.datetime.now(dt.UTC))
    _set_spec_fields(patch, {**filled, field: spec[field], "seal": spec["seal"]})


def watched(ns: str, memo: kopf.Memo) -> bool:
    """Whether the operator watches namespace `ns` (its --namespace globs, as Kopf matches them)."""
    return bool(memo["config"].watches(ns))


async def deployments_seen(ns: str, memo: kopf.Memo, indexes: Mapping[str, Any]) -> Mapping[str, Any]:
    """The indexes as the revision fill-in and the separation-of-duties check read them. An instance
    started with --namespace indexes only those namespaces, and Kopf watches even the cluster-scoped
    kinds (policies, namespaces) only once one of them exists; for any other namespace (a namespace
    shard answering for another shard's namespace, docs/sharding.md) the namespace, the policies
    and its ModelDeployments are read from the API server for the request, in the indexes' shape:
    the indexes would find nothing there and so let a self-approval through. A failed read refuses
    the request (fail closed)."""
    if watched(ns, memo):
        return indexes
    return {**indexes, **await read_live(ns)}


async def read_live(ns: str) -> dict[str, Any]:
    """Namespace `ns`, the policies and its ModelDeployments read from the API server, in the
    indexes' shape; a failed read refuses the request (fail closed)."""
    try:
        return await asyncio.to_thread(_read_live, ns)
    except ApiException as e:
        raise kopf.AdmissionError(f"could not read namespace {ns}: {act_kube.refusal(e)}", code=503) from e
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise kopf.AdmissionError(f"could not read namespace {ns}: {e}", code=503) from e


def _read_live(ns: str) -> dict[str, Any]:
    api: Any = kubernetes.client.CustomObjectsApi(act_kube.client())
    core: Any = kubernetes.client.CoreV1Api(act_kube.client())
    namespace = core.read_namespace(ns)
    policies = api.list_cluster_custom_object(GROUP, VERSION, "governancepolicies")["items"]
    listed = api.list_namespaced_custom_object(GROUP, VERSION, ns, "modeldeployments")["items"]
    by_name: dict[Any, list[Any]] = {}
    by_digest: dict[Any, list[Any]] = {}
    for item in listed:
        name, spec = item["metadata"]["name"], item.get("spec") or {}
        by_name[(ns, name)] = [item]
        by_digest.setdefault((ns, (spec.get("model") or {}).get("digest")), []).append(
            digest_summary(name, spec)
        )
    return {
        "namespaces": {ns: [dict(namespace.metadata.labels or {})]},
        "policies": {p["metadata"]["name"]: [index_policy(p)] for p in policies},
        "modeldeployments": by_name,
        "deployments_by_digest": by_digest,
    }


def requested_revisions(
    ns: str, model: Mapping[str, Any], indexes: Mapping[str, Any]
) -> dict[str, list[str]]:
    """Each revision the ModelDeployments in `ns` request for this model name, version and digest,
    with the ModelDeployments that request it."""
    name, version, digest = (str(model.get(k) or "") for k in ("name", "version", "digest"))
    labels: Mapping[str, str] = next(iter(indexes.get("namespaces", {}).get(ns, [])), {})
    policies = parse_policies(indexes.get("policies", {}))
    deployments = indexes.get("modeldeployments", {})
    revisions: dict[str, list[str]] = {}
    for summary in indexes.get("deployments_by_digest", {}).get((ns, digest), []):
        raw = first(deployments, (ns, summary.get("name")))
        if raw is None:
            continue
        try:
            md = ModelDeployment.model_validate(
                {k: raw[k] for k in ("apiVersion", "kind", "metadata", "spec")}
            )
        except (pydantic.ValidationError, KeyError):
            continue
        if (md.spec.model.name, md.spec.model.version) != (name, version):
            continue
        selected = select_policies(policies, labels, md.spec.card.risk_level)
        revisions.setdefault(requested_revision_id(md, selected), []).append(md.name)
    return revisions


def revision_for(ns: str, model: Mapping[str, Any], indexes: Mapping[str, Any]) -> str:
    """The one revision the ModelDeployments in `ns` request for this model name, version and
    digest; refuses (AdmissionError) when none or several distinct ones do."""
    subject = " ".join(str(model.get(k) or "") for k in ("name", "version", "digest"))
    how = "set spec.model.revision (`modelgate revision -f <modeldeployment.yaml>` prints it)"
    revisions = requested_revisions(ns, model, indexes)
    if not revisions:
        raise kopf.AdmissionError(
            f"no ModelDeployment in namespace {ns} requests {subject}; create it first, or {how}",
            code=422,
        )
    if len(revisions) > 1:
        listing = "; ".join(
            f"revision {rev} (ModelDeployment {', '.join(sorted(names))})"
            for rev, names in sorted(revisions.items())
        )
        raise kopf.AdmissionError(
            f"the ModelDeployments in namespace {ns} request several revisions of {subject}: {listing}; "
            f"say which one this covers: {how}",
            code=422,
        )
    return next(iter(revisions))


@kopf.on.mutate(GROUP, VERSION, "modelapprovals", id="stamp-approval")
@kopf.on.mutate(GROUP, VERSION, "modelevaluations", id="stamp-evaluation")
async def stamp_evidence(
    body: kopf.Body,
    patch: kopf.Patch,
    userinfo: kopf.UserInfo,
    memo: kopf.Memo,
    operation: str | None = None,
    old: kopf.Body | None = None,
    **kwargs: Any,
) -> None:
    await _stamp(KINDS[kwargs["resource"].plural], body, patch, userinfo, operation, old, memo, kwargs)


def _quantity(value: Any) -> Any:
    """A resource quantity as a number, or None when it is none (the schema check names it)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return None
    parse: Any = parse_quantity  # the kubernetes client is untyped
    try:
        return parse(value)
    except (ValueError, ArithmeticError):
        return None


def resource_problems(spec: Mapping[str, Any]) -> str | None:
    """Each resource of spec.serving.resources requested above its limit, named with both values;
    None when there is none. The Deployment's validation refuses such a container, and the schema
    of a map of quantities cannot compare two of them."""
    serving = spec.get("serving")
    resources = serving.get("resources") if isinstance(serving, Mapping) else None
    requests = resources.get("requests") if isinstance(resources, Mapping) else None
    limits = resources.get("limits") if isinstance(resources, Mapping) else None
    if not isinstance(requests, Mapping) or not isinstance(limits, Mapping):
        return None
    above = [
        f"spec.serving.resources.requests.{name}: {requests[name]} must be less than or equal to its "
        f"limit {limits[name]}"
        for name in requests
        if name in limits
        and (want := _quantity(requests[name])) is not None
        and (limit := _quantity(limits[name])) is not None
        and want > limit
    ]
    return "; ".join(above) or None


@kopf.on.mutate(GROUP, VERSION, "modeldeployments", id="stamp-deployment")
async def stamp_deployment(
    body: kopf.Body,
    patch: kopf.Patch,
    userinfo: kopf.UserInfo,
    operation: str | None = None,
    old: kopf.Body | None = None,
    warnings: list[str] | None = None,
    **_: Any,
) -> None:
    spec = spec_of(body)
    if spec is None:
        return  # the schema check refuses it, naming spec
    if problems := resource_problems(spec):
        raise kopf.AdmissionError(f"ModelDeployment is invalid: {problems}", code=422)
    digest = _digest(spec)
    claimed = spec.get("digestSetBy")
    stored_spec = spec_of(old)
    if operation == "UPDATE" and stored_spec is not None and _digest(stored_spec) == digest:
        stored = stored_spec.get("digestSetBy")
        if stored is not None:
            _set_spec_fields(patch, {"digestSetBy": stored})
        else:
            _remove_spec_field(patch, "digestSetBy")
        kept: Any = stored
    else:
        kept = identity(userinfo)
        _set_spec_fields(patch, {"digestSetBy": kept})
        if operation == "CREATE":
            _add_finalizer(patch)
    if operation == "UPDATE" and old is not None and _drops_finalizer(old, body):
        # A `kubectl replace` (or a GitOps replace) of the manifest would take the finalizer off and
        # so skip the retirement: it stays until the operator itself retires the model.
        _add_finalizer(patch)
    if claimed is not None and claimed != kept and warnings is not None:
        warnings.append(
            "spec.digestSetBy is recorded by modelgate from the request that sets spec.model.digest; "
            f"the value written was ignored (kept: {(kept or {}).get('username', 'none')})"
        )


def _digest(spec: Mapping[str, Any]) -> Any:
    model = spec.get("model")
    return model.get("digest") if isinstance(model, Mapping) else None


def _drops_finalizer(old: kopf.Body, new: kopf.Body) -> bool:
    """The update takes modelgate's finalizer off a ModelDeployment that is not being deleted."""
    return (
        FINALIZER in (old.metadata.get("finalizers") or [])
        and FINALIZER not in (new.metadata.get("finalizers") or [])
        and not new.metadata.get("deletionTimestamp")
    )


@kopf.on.validate(GROUP, VERSION, "modelevaluations", id="validate-evaluation")
async def validate_evaluation(
    body: kopf.Body, operation: str | None = None, old: kopf.Body | None = None, **_: Any
) -> None:
    if operation == "UPDATE" and old is not None and spec_of(old) != spec_of(body):
        raise kopf.AdmissionError(
            "ModelEvaluation spec is immutable: it records one measurement of one artifact; "
            "create a new ModelEvaluation instead",
            code=422,
        )


@kopf.on.validate(GROUP, VERSION, "modelapprovals", id="validate-approval")
async def validate_approval(
    body: kopf.Body,
    userinfo: kopf.UserInfo,
    namespace: str | None,
    operation: str | None = None,
    old: kopf.Body | None = None,
    **kwargs: Any,
) -> None:
    if operation == "UPDATE":
        if old is not None and spec_of(old) != spec_of(body):
            raise kopf.AdmissionError(
                "ModelApproval spec is immutable: an approval is a decision about one artifact; "
                "create a new ModelApproval instead (delete this one to revoke it)",
                code=422,
            )
        return
    if operation != "CREATE":
        return
    problems = evidence_problems("ModelApproval", body)
    spec = spec_of(body)
    if problems or spec is None:  # past the schema check: only where the schema and the model differ
        raise kopf.AdmissionError(f"ModelApproval is invalid: {problems}", code=422)
    if spec.get("decision") != "approved":
        return
    ns = namespace or ""
    seen = await deployments_seen(ns, kwargs["memo"], kwargs)
    digest = spec["model"]["digest"]
    requester = str(userinfo.get("username", ""))
    labels: Mapping[str, str] = next(iter(seen.get("namespaces", {}).get(ns, [])), {})
    policies = parse_policies(seen.get("policies", {}))
    for dep in seen.get("deployments_by_digest", {}).get((ns, digest), []):
        if dep.get("digestSetBy") != requester:
            continue
        demanding = [
            p.name
            for p in select_policies(policies, labels, dep.get("riskLevel", ""))
            if p.spec.separation_of_duties
        ]
        if demanding:
            raise kopf.AdmissionError(
                f"separation of duties: {requester} set the digest {digest} on ModelDeployment "
                f"{dep['name']} and may not approve it (GovernancePolicy {', '.join(demanding)}); "
                "another person must approve",
                code=403,
            )
