"""Factories for unit tests, in one place.

Objects: small factories for modelgate objects, built from dicts through `parse`, so every object a
test uses is one the real API would accept (schema, patterns and validators included). Defaults
describe one coherent story: model fraud-detector 1.0.0 with DIGEST in namespace fraud-prod,
approved by bob of the ethics-board group, evaluated on the fraud-holdout dataset.

Plans: `Observed` snapshots, owned objects as the API server returns them, monitoring readings, and
`Story`, which feeds each plan's status back into the next snapshot the way the reconcile loop does
(write status, apply owned objects, label pods, decide again). The story of the defaults:
fraud-detector v1 (DIGEST) and v2 (OTHER_DIGEST) in namespace fraud-prod, each approved by bob of
the ethics board a day before the story starts, one policy requiring that approval, and a monitoring
check `psi <= 0.25` failing after 3 bad readings in a row and inconclusive after 2 missing ones.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import (
    API_VERSION,
    GovernancePolicy,
    ModelApproval,
    ModelDeployment,
    ModelDeploymentStatus,
    ModelEvaluation,
    parse,
)
from modelgate.decide.drift import Sample
from modelgate.decide.gates import GateInput
from modelgate.decide.monitoring import Readings, checks_for
from modelgate.decide.plan import plan
from modelgate.decide.revision import requested_revision_id, revision_id
from modelgate.decide.types import Decision, Observed, Plan

NOW = datetime(2026, 12, 1, 12, 0, 0, tzinfo=UTC)
NAMESPACE = "fraud-prod"
MODEL = "fraud-detector"
VERSION = "1.0.0"
DIGEST = "sha256:" + "abcdef12" * 8
OTHER_DIGEST = "sha256:" + "1" * 64
DATASET = "fraud-holdout"
IMAGE = "registry.example/sklearn-server@sha256:" + "5e" * 32
"""The default serving image, pinned by digest (policies require it by default)."""
DEFAULT = "default"
"""`revision=DEFAULT`: the revision of the default make_deployment() of that model, version and
digest (what the webhook would fill in)."""


def rfc3339(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_deployment(
    *,
    name: str = MODEL,
    namespace: str = NAMESPACE,
    model: str = MODEL,
    version: str = VERSION,
    digest: str = DIGEST,
    risk_level: str = "high",
    card: dict[str, Any] | None = None,
    approvals: Sequence[str] = (),
    evaluations: Sequence[str] = (),
    digest_set_by: str | None = "dave",
    monitoring: dict[str, Any] | None = None,
    serving: dict[str, Any] | None = None,
    uid: str | None = None,
    generation: int | None = None,
) -> ModelDeployment:
    """A ModelDeployment; `card` entries override (or, with None, remove) the default card fields,
    `serving` entries override the default serving spec (image only), `monitoring` is
    spec.monitoring as written in a manifest; `uid` and `generation` go to metadata as the API
    server would set them."""
    full_card: dict[str, Any] = {
        "owner": "team-fraud@example.com",
        "intendedUse": "Scores card-not-present transactions.",
        "limitations": "EU traffic only.",
        "trainingData": "14 months of EU card transactions.",
        "riskLevel": risk_level,
    }
    for key, value in (card or {}).items():
        if value is None:
            full_card.pop(key, None)
        else:
            full_card[key] = value
    spec: dict[str, Any] = {
        "model": {
            "name": model,
            "version": version,
            "uri": f"s3://models/{model}/{version}",
            "digest": digest,
        },
        "card": full_card,
        "serving": {"image": IMAGE, **(serving or {})},
        "approvals": [{"name": n} for n in approvals],
        "evaluations": [{"name": n} for n in evaluations],
    }
    if monitoring is not None:
        spec["monitoring"] = monitoring
    if digest_set_by is not None:
        spec["digestSetBy"] = {"username": digest_set_by, "groups": ["ml-engineers"]}
    raw = _object("ModelDeployment", name, namespace, spec, uid=uid)
    if generation is not None:
        raw["metadata"]["generation"] = generation
    obj = parse(raw)
    assert isinstance(obj, ModelDeployment)
    return obj


def make_approval(
    name: str = "bob-ok",
    *,
    role: str = "ethics-board",
    decision: str = "approved",
    username: str | None = "bob",
    groups: Sequence[str] = ("ethics-board",),
    model: str = MODEL,
    version: str = VERSION,
    digest: str = DIGEST,
    expires_at: datetime | None = None,
    created_at: datetime | str | None = NOW - timedelta(days=1),
    comment: str | None = None,
    seal: str | None = None,
    uid: str | None = None,
    revision: str | None = DEFAULT,
    risk_level: str | None = None,
) -> ModelApproval:
    """A ModelApproval; username None leaves approvedBy unset (never stamped by the webhook);
    `revision` DEFAULT names the revision of the default deployment of that model, None names none."""
    spec: dict[str, Any] = {
        "model": _model_ref(model, version, digest, revision),
        "role": role,
        "decision": decision,
    }
    if risk_level is not None:
        spec["riskLevel"] = risk_level
    if username is not None:
        spec["approvedBy"] = {"username": username, "groups": list(groups)}
    if expires_at is not None:
        spec["expiresAt"] = rfc3339(expires_at)
    if comment is not None:
        spec["comment"] = comment
    if seal is not None:
        spec["seal"] = seal
    obj = parse(_object("ModelApproval", name, NAMESPACE, spec, created_at, uid=uid))
    assert isinstance(obj, ModelApproval)
    return obj


def make_evaluation(
    name: str = "holdout",
    *,
    metrics: dict[str, float] | None = None,
    dataset: str = DATASET,
    evaluated_at: datetime = NOW - timedelta(days=1),
    model: str = MODEL,
    version: str = VERSION,
    digest: str = DIGEST,
    seal: str | None = None,
    uid: str | None = None,
    revision: str | None = DEFAULT,
    submitted_by: str | None = None,
    submitter_groups: Sequence[str] = ("evaluators",),
    created_at: datetime | None = None,
) -> ModelEvaluation:
    """A ModelEvaluation, created (creationTimestamp) when it was evaluated unless `created_at`."""
    spec: dict[str, Any] = {
        "model": _model_ref(model, version, digest, revision),
        "dataset": {"name": dataset, "uri": f"s3://datasets/{dataset}.parquet"},
        "metrics": {"accuracy": 0.94} if metrics is None else metrics,
        "evaluatedAt": rfc3339(evaluated_at),
    }
    if seal is not None:
        spec["seal"] = seal
    if submitted_by is not None:
        spec["submittedBy"] = {"username": submitted_by, "groups": list(submitter_groups)}
    created = evaluated_at if created_at is None else created_at
    obj = parse(_object("ModelEvaluation", name, NAMESPACE, spec, created, uid=uid))
    assert isinstance(obj, ModelEvaluation)
    return obj


def default_revision(model: str = MODEL, version: str = VERSION, digest: str = DIGEST) -> str:
    """The revision id of the default make_deployment() of this model, version and digest."""
    md = make_deployment(model=model, version=version, digest=digest)
    return revision_id(md.spec.model_dump(by_alias=True, exclude_none=True, mode="json"))


def revision_of(md: ModelDeployment, policies: Sequence[GovernancePolicy] = ()) -> str:
    """The id of the revision `md` requests under `policies` (what the webhook would fill in)."""
    return requested_revision_id(md, policies)


def _model_ref(model: str, version: str, digest: str, revision: str | None) -> dict[str, Any]:
    ref = {"name": model, "version": version, "digest": digest}
    if revision == DEFAULT:
        ref["revision"] = default_revision(model, version, digest)
    elif revision is not None:
        ref["revision"] = revision
    return ref


def approval_requirement(
    role: str = "ethics-board",
    *,
    users: Sequence[str] = (),
    groups: Sequence[str] = ("ethics-board",),
    count: int = 1,
) -> dict[str, Any]:
    approvers: dict[str, Any] = {}
    if users:
        approvers["users"] = list(users)
    if groups:
        approvers["groups"] = list(groups)
    return {"role": role, "approvers": approvers, "count": count}


def evaluation_requirement(
    metric: str = "accuracy",
    *,
    min: float | None = None,
    max: float | None = None,
    max_age: str | None = None,
    dataset: str | None = None,
) -> dict[str, Any]:
    req: dict[str, Any] = {"metric": metric}
    for key, value in (("min", min), ("max", max), ("maxAge", max_age), ("dataset", dataset)):
        if value is not None:
            req[key] = value
    return req


def make_policy(
    name: str = "prod-governance",
    *,
    namespace_selector: dict[str, Any] | None = None,
    risk_levels: Sequence[str] = (),
    required_card_fields: Sequence[str] = (),
    approvals: Sequence[dict[str, Any]] = (),
    evaluations: Sequence[dict[str, Any]] = (),
    separation_of_duties: bool = False,
    on_revocation: str = "suspend",
    monitoring: Sequence[dict[str, Any]] = (),
    allow_all: bool | None = None,
    **extra: Any,
) -> GovernancePolicy:
    """A GovernancePolicy; without any requirement it is an allowAll policy (an empty one is
    refused) unless `allow_all` says otherwise; `extra` are more spec fields in wire form."""
    if allow_all is None:
        allow_all = not (required_card_fields or approvals or evaluations or monitoring)
    spec: dict[str, Any] = {
        "allowAll": allow_all,
        **extra,
        "riskLevels": list(risk_levels),
        "requiredCardFields": list(required_card_fields),
        "approvals": list(approvals),
        "evaluations": list(evaluations),
        "separationOfDuties": separation_of_duties,
        "onRevocation": on_revocation,
        "monitoring": list(monitoring),
    }
    if namespace_selector is not None:
        spec["namespaceSelector"] = namespace_selector
    obj = parse(
        {"apiVersion": API_VERSION, "kind": "GovernancePolicy", "metadata": {"name": name}, "spec": spec}
    )
    assert isinstance(obj, GovernancePolicy)
    return obj


def gate_input(
    deployment: ModelDeployment,
    policies: Sequence[GovernancePolicy] = (),
    approvals: Sequence[ModelApproval] = (),
    evaluations: Sequence[ModelEvaluation] = (),
    **kwargs: Any,
) -> GateInput:
    """A GateInput in which the given objects are all the evidence of the model in the namespace
    (referenced or not); a referenced name exists when one of them has it."""
    names = {("ModelApproval", a.name) for a in approvals} | {
        ("ModelEvaluation", e.name) for e in evaluations
    }
    references = {
        (kind, ref.name): (kind, ref.name) in names
        for kind, refs in (
            ("ModelApproval", deployment.spec.approvals),
            ("ModelEvaluation", deployment.spec.evaluations),
        )
        for ref in refs
    }
    return GateInput(
        deployment=deployment,
        policies=list(policies),
        approvals=list(approvals),
        evaluations=list(evaluations),
        now=kwargs.pop("now", NOW),
        references=kwargs.pop("references", references),
        **kwargs,
    )


def _object(
    kind: str,
    name: str,
    namespace: str,
    spec: dict[str, Any],
    created: datetime | str | None = None,
    *,
    uid: str | None = None,
) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if uid is not None:
        metadata["uid"] = uid
    if created is not None:
        metadata["creationTimestamp"] = created if isinstance(created, str) else rfc3339(created)
    return {"apiVersion": API_VERSION, "kind": kind, "metadata": metadata, "spec": spec}


# === plans: snapshots, owned objects, readings, stories ==========================================

UID = "0b9e4c56-7f1a-4d7e-9a51-6f2f3c8d1e01"
V2 = "2.0.0"
V3 = "3.0.0"
THIRD_DIGEST = "sha256:" + "2" * 64
DAY_BEFORE = NOW - timedelta(days=1)


# --- spec pieces -----------------------------------------------------------------------------------


def metric(
    name: str = "psi",
    *,
    max: float | None = 0.25,
    min: float | None = None,
    failure_limit: int = 3,
    inconclusive_limit: int = 2,
    template: str | None = None,
) -> dict[str, Any]:
    """One spec.monitoring.metrics entry (inline query unless `template` names a MetricTemplate)."""
    check: dict[str, Any] = {
        "name": name,
        "failureLimit": failure_limit,
        "inconclusiveLimit": inconclusive_limit,
    }
    if template is not None:
        check["templateRef"] = {"name": template}
    else:
        check["query"] = f'{name}{{namespace="{{{{namespace}}}}",model="{{{{model}}}}"}}'
    if min is not None:
        check["min"] = min
    if max is not None:
        check["max"] = max
    return check


def monitoring(*metrics: dict[str, Any], on_drift: str = "rollback", interval: str = "30s") -> dict[str, Any]:
    return {"interval": interval, "metrics": list(metrics) or [metric()], "onDrift": on_drift}


def model(
    version: str = VERSION,
    digest: str = DIGEST,
    *,
    approvals: Sequence[str] | None = None,
    generation: int = 1,
    **kwargs: Any,
) -> ModelDeployment:
    """The ModelDeployment of the story at `version`, referencing `approve-<version>` by default."""
    return make_deployment(
        version=version,
        digest=digest,
        approvals=[f"approve-{version}"] if approvals is None else approvals,
        uid=UID,
        generation=generation,
        **kwargs,
    )


def approval(
    version: str = VERSION,
    digest: str = DIGEST,
    *,
    name: str | None = None,
    created_at: datetime = DAY_BEFORE,
    **kwargs: Any,
) -> ModelApproval:
    """bob's ethics-board approval of one revision (named `approve-<version>` by default)."""
    name = name or f"approve-{version}"
    return make_approval(
        name, version=version, digest=digest, created_at=created_at, uid=f"uid-{name}", **kwargs
    )


def policy(**kwargs: Any) -> GovernancePolicy:
    """The story's policy: one ethics-board approval, suspend on revocation."""
    return make_policy(approvals=[approval_requirement()], **kwargs)


# --- snapshots -------------------------------------------------------------------------------------


def body_of(md: ModelDeployment, status: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ModelDeployment as the API server returns it."""
    body = md.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["status"] = copy.deepcopy(dict(status or {}))
    return body


def observed(
    md: ModelDeployment,
    *,
    policies: Sequence[GovernancePolicy] = (),
    approvals: Iterable[ModelApproval] = (),
    evaluations: Iterable[ModelEvaluation] = (),
    status: Mapping[str, Any] | None = None,
    owned_deployment: Mapping[str, Any] | None = None,
    owned_service: Mapping[str, Any] | None = None,
    readings: Readings | None = None,
    **kwargs: Any,
) -> Observed:
    """A snapshot in which the given objects are all the evidence in the namespace (referenced or
    not); a referenced name exists when one of them has it."""
    found_a = list(approvals)
    found_e = list(evaluations)
    names = {("ModelApproval", a.name) for a in found_a} | {("ModelEvaluation", e.name) for e in found_e}
    references = {
        (kind, ref.name): (kind, ref.name) in names
        for kind, refs in (("ModelApproval", md.spec.approvals), ("ModelEvaluation", md.spec.evaluations))
        for ref in refs
    }
    return Observed(
        body=body_of(md, status),
        deployment=md,
        policies=list(policies),
        approvals=[a for a in found_a if a.spec.model.name == md.spec.model.name],
        evaluations=[e for e in found_e if e.spec.model.name == md.spec.model.name],
        references=references,
        owned_deployment=owned_deployment,
        owned_service=owned_service,
        readings=readings,
        **kwargs,
    )


def story_observed(md: ModelDeployment | None = None, **kwargs: Any) -> Observed:
    """The default snapshot: the story's policy and the approvals of v1 and v2 all exist."""
    kwargs.setdefault("policies", [policy()])
    kwargs.setdefault("approvals", [approval(), approval(V2, OTHER_DIGEST)])
    return observed(md or model(monitoring=monitoring()), **kwargs)


# --- owned objects as the API server returns them ---------------------------------------------------


def stored(obj: Mapping[str, Any], *, generation: int = 1) -> dict[str, Any]:
    """A Deployment or Service as read back after modelgate applied it: server-set metadata and the
    defaults the API server fills in, none of which modelgate owns."""
    out = copy.deepcopy(dict(obj))
    meta = out["metadata"]
    meta.update(
        uid=f"uid-{out['kind'].lower()}",
        resourceVersion=str(100 + generation),
        creationTimestamp="2026-11-30T12:00:00Z",
        generation=generation,
    )
    spec = out["spec"]
    if out["kind"] == "Deployment":  # as kube-apiserver v1.37 defaults it (tests/unit/data/)
        spec.setdefault("revisionHistoryLimit", 10)
        spec.setdefault("progressDeadlineSeconds", 600)
        spec.setdefault(
            "strategy",
            {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
        )
        pod = spec["template"]["spec"]
        pod.setdefault("restartPolicy", "Always")
        pod.setdefault("terminationGracePeriodSeconds", 30)
        pod.setdefault("dnsPolicy", "ClusterFirst")
        pod.setdefault("securityContext", {})
        pod.setdefault("schedulerName", "default-scheduler")
        for container in pod["containers"]:
            container.setdefault("imagePullPolicy", "IfNotPresent")
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
            container.setdefault("resources", {})
    else:
        spec.setdefault("clusterIP", "10.96.12.34")
        spec.setdefault("clusterIPs", ["10.96.12.34"])
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        spec.setdefault("internalTrafficPolicy", "Cluster")
    return out


def rolled_out(obj: Mapping[str, Any], *, generation: int = 1) -> dict[str, Any]:
    """A Deployment whose every replica is updated, ready and available."""
    out = stored(obj, generation=generation) if "uid" not in obj["metadata"] else copy.deepcopy(dict(obj))
    gen = int(out["metadata"]["generation"])
    want = int(out["spec"].get("replicas", 1))
    out["status"] = {
        "observedGeneration": gen,
        "replicas": want,
        "readyReplicas": want,
        "updatedReplicas": want,
        "availableReplicas": want,
    }
    return out


# --- readings --------------------------------------------------------------------------------------

Value = float | Sample


def sample(value: Value) -> Sample:
    return value if isinstance(value, Sample) else Sample.of(value, query="psi{...}")


def readings(
    digest: str,
    at: datetime,
    samples: Mapping[str, Value] | None = None,
    *,
    seq: int = 1,
    **named: Value,
) -> Readings:
    """One monitoring round: `readings(DIGEST, now, psi=0.1)`, `readings(DIGEST, now, {"p-99": 1})`."""
    values = {**(samples or {}), **named}
    return Readings(seq, at, digest, {name: sample(v) for name, v in values.items()})


PASSING = 0.1
FAILING = 0.4
NO_DATA = Sample.failed("empty", "no series matched")
UNREACHABLE = Sample.failed("unreachable", "connection refused")


# --- the driver ------------------------------------------------------------------------------------


def step(
    template: Observed,
    status: Mapping[str, Any],
    owned_deployment: Mapping[str, Any] | None,
    owned_service: Mapping[str, Any] | None,
    round_: Readings | None,
    now: datetime,
) -> Plan:
    """One reconcile: `template` with the stored status, owned objects and readings of this moment."""
    body = {**template.body, "status": copy.deepcopy(dict(status))}
    obs = replace(
        template,
        body=body,
        owned_deployment=copy.deepcopy(owned_deployment),
        owned_service=copy.deepcopy(owned_service),
        readings=round_,
    )
    return plan(obs, now)


@dataclass
class Story:
    """The reconcile loop in miniature: each `run` plans from the stored status and owned objects,
    then does what the act layer would (store the status, apply and roll out the objects, label
    the pods), and advances the clock. `change` edits the spec or the evidence in the cluster."""

    template: Observed
    now: datetime = NOW
    status: dict[str, Any] = field(default_factory=dict)
    deployment: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    pods_quarantined: bool = False
    seq: int = 0
    plans: list[Plan] = field(default_factory=list)
    tick: timedelta = timedelta(seconds=30)
    approvals: dict[str, ModelApproval] = field(default_factory=dict)
    """Every ModelApproval in the namespace, referenced or not."""
    evaluations: dict[str, ModelEvaluation] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for a in self.template.approvals:
            self.approvals.setdefault(a.name, a)
        for e in self.template.evaluations:
            self.evaluations.setdefault(e.name, e)

    @classmethod
    def of(
        cls,
        md: ModelDeployment | None = None,
        *,
        approvals: Iterable[ModelApproval] | None = None,
        **kwargs: Any,
    ) -> Story:
        """The default story; `approvals` defaults to those of v1 and v2 (referenced or not)."""
        pool = list(approvals) if approvals is not None else [approval(), approval(V2, OTHER_DIGEST)]
        story = cls(story_observed(md, approvals=pool, **kwargs))
        story.approvals.update({a.name: a for a in pool})
        return story

    @property
    def last(self) -> Plan:
        return self.plans[-1]

    @property
    def serving_digest(self) -> str | None:
        rev = self.status.get("servingRevision")
        return str(rev["digest"]) if rev else None

    def run(self, round_: Readings | None = None, *, roll_out: bool = True) -> Plan:
        self.now += self.tick
        p = step(self.template, self.status, self.deployment, self.service, round_, self.now)
        check_status(p.status, generation=int(self.template.body["metadata"]["generation"]))
        self.plans.append(p)
        self.status = copy.deepcopy(p.status)
        if p.deployment is not None:
            generation = int((self.deployment or {}).get("metadata", {}).get("generation", 0)) + 1
            self.deployment = stored(p.deployment, generation=generation)
        if roll_out and self.deployment is not None:
            self.deployment = rolled_out(self.deployment)
        if p.service is not None:
            self.service = stored(p.service)
        if p.label_pods is not None:
            self.pods_quarantined = p.label_pods
        return p

    def read(
        self,
        psi: Value | None = None,
        *,
        digest: str | None = None,
        samples: Mapping[str, Value] | None = None,
        **named: Value,
    ) -> Plan:
        """A monitoring round for the serving revision (or `digest`), then a reconcile. Samples by
        metric name: `read(0.1)` (psi), `read(psi=0.1, latency=0.2)`, `read(samples={"error-rate": 1})`."""
        self.seq += 1
        values = {**({} if psi is None else {"psi": psi}), **(samples or {}), **named}
        digest = digest or self.serving_digest
        assert digest is not None, "nothing serves: no readings to take"
        return self.run(readings(digest, self.now + self.tick, values, seq=self.seq))

    def change(
        self,
        md: ModelDeployment | None = None,
        *,
        add: Iterable[ModelApproval | ModelEvaluation] = (),
        remove: Iterable[str] = (),
        policies: Sequence[GovernancePolicy] | None = None,
    ) -> None:
        """Apply a new spec (generation + 1), create (or recreate) evidence, delete evidence by name,
        or replace the policies in force."""
        old = self.template
        current = old.deployment
        if md is not None:
            generation = int(old.body["metadata"].get("generation") or 1) + 1
            current = md.model_copy(update={"metadata": {**md.metadata, "generation": generation}})
        for obj in add:
            pool: dict[str, Any] = self.approvals if isinstance(obj, ModelApproval) else self.evaluations
            pool[obj.name] = obj
        for name in remove:
            self.approvals.pop(name, None)
            self.evaluations.pop(name, None)
        self.template = observed(
            current,
            policies=old.policies if policies is None else policies,
            approvals=self.approvals.values(),
            evaluations=self.evaluations.values(),
            allow_no_policy=old.allow_no_policy,
            seal_valid=old.seal_valid,
        )

    def serve_v1(self) -> Plan:
        """Admit v1, roll it out and (with monitoring) pass one round: v1 becomes known good."""
        self.run()
        p = self.run()
        return self.pass_every_check() or p

    def serve_v2(self) -> Plan:
        """After serve_v1: ask for v2, roll it out and pass one round (v2 becomes known good too)."""
        self.change(model(V2, OTHER_DIGEST, monitoring=self._monitoring()))
        self.run()
        p = self.run()
        return self.pass_every_check() or p

    def pass_every_check(self) -> Plan | None:
        """One round in which every check of the snapshot reads PASSING (None without checks)."""
        names = [ch.name for ch in checks_for(self.template.deployment, self.template.policies)]
        return self.read(samples=dict.fromkeys(names, PASSING)) if names else None

    def _monitoring(self) -> dict[str, Any] | None:
        mon = self.template.deployment.spec.monitoring
        return None if mon is None else mon.model_dump(by_alias=True, exclude_none=True, mode="json")


def check_status(status: Mapping[str, Any], *, generation: int) -> None:
    """What every status written must be: schema-valid (the CRD's own model, extra fields refused),
    plain JSON without NaN, kstatus-compatible (Ready present, observedGeneration current, at most one
    of Reconciling and Stalled)."""
    ModelDeploymentStatus.model_validate(status)
    json.dumps(status, allow_nan=False)
    assert status["observedGeneration"] == generation
    types = [x["type"] for x in status["conditions"]]
    assert c.READY in types and len(types) == len(set(types))
    assert all(x["observedGeneration"] == generation for x in status["conditions"])
    # kstatus' abnormal-true conditions: at most one of them, and only while True.
    kstatus = [x for x in status["conditions"] if x["type"] in (c.RECONCILING, c.STALLED)]
    assert len(kstatus) <= 1 and all(x["status"] == c.TRUE for x in kstatus), kstatus
    assert len(status.get("history") or []) <= c.HISTORY_LIMIT


def actions(p: Plan) -> list[str]:
    return [d.action for d in p.decisions]


def decision(p: Plan, action: str) -> Decision:
    found = [d for d in p.decisions if d.action == action]
    assert len(found) == 1, f"want one {action} decision, got {actions(p)}"
    return found[0]


def condition(status: Mapping[str, Any], type_: str) -> dict[str, Any]:
    found = [c for c in status.get("conditions") or [] if c["type"] == type_]
    assert len(found) == 1, f"want one {type_} condition in {status.get('conditions')}"
    return dict(found[0])


def cond(status: Mapping[str, Any], type_: str) -> tuple[str, str]:
    """(status, reason) of a condition."""
    c = condition(status, type_)
    return c["status"], c["reason"]


def env(dep: Mapping[str, Any]) -> dict[str, str]:
    container = dep["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}
