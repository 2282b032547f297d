"""`modelgate report`: the governance trail of one model, or of every model in a namespace, for auditors.

    modelgate report -n fraud-prod                  # every ModelDeployment in the namespace
    modelgate report -n fraud-prod fraud-detector   # one
    modelgate report -n fraud-prod -o json          # machine-readable, same content
    modelgate report -n fraud-prod fraud-detector --html report.html   # one page, with charts

For each model: the artifact and its card, the policies in force, the evidence it references
(approvals with their stamped approvers and seals, evaluations with their values), every gate,
the revisions (serving, known good, rejected after drift, quarantine), the decision history and
the Events. Needs only read access (the `modelgate-auditor` role).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TextIO

import kubernetes
import pydantic
import yaml
from kubernetes.client.exceptions import ApiException

from modelgate.api.v1alpha1 import GROUP, VERSION, GovernancePolicy, ModelDeployment
from modelgate.cli.kube import CliError
from modelgate.decide.monitoring import checks_for
from modelgate.decide.policy import select_policies


def _list(api: Any, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
    if namespace is None:
        return list(api.list_cluster_custom_object(GROUP, VERSION, plural)["items"])
    return list(api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural)["items"])


def gather(namespace: str, name: str | None) -> list[dict[str, Any]]:
    """Everything the report says, as plain data (the JSON output)."""
    custom: Any = kubernetes.client.CustomObjectsApi()
    core: Any = kubernetes.client.CoreV1Api()
    mdeps = _list(custom, "modeldeployments", namespace)
    if name:
        mdeps = [m for m in mdeps if m["metadata"]["name"] == name]
        if not mdeps:
            raise LookupError(f"ModelDeployment {namespace}/{name} not found")
    approvals = {a["metadata"]["name"]: a for a in _list(custom, "modelapprovals", namespace)}
    evaluations = {e["metadata"]["name"]: e for e in _list(custom, "modelevaluations", namespace)}
    try:
        policies = [GovernancePolicy.model_validate(p) for p in _list(custom, "governancepolicies")]
        labels = core.read_namespace(namespace).metadata.labels or {}
    except ApiException:
        policies, labels = [], {}
    try:
        templates = {t["metadata"]["name"]: t["spec"] for t in _list(custom, "metrictemplates")}
    except ApiException:
        templates = {}
    events = core.list_namespaced_event(namespace, field_selector="involvedObject.kind=ModelDeployment").items
    out = []
    for md in mdeps:
        meta, spec, st = md["metadata"], md["spec"], md.get("status") or {}
        in_force = select_policies(policies, labels, spec["card"]["riskLevel"])
        out.append(
            {
                "name": meta["name"],
                "namespace": namespace,
                "uid": meta["uid"],
                "created": meta.get("creationTimestamp"),
                "model": spec["model"],
                "card": spec["card"],
                "digestSetBy": spec.get("digestSetBy"),
                "phase": st.get("phase"),
                "conditions": {
                    c["type"]: {k: c.get(k) for k in ("status", "reason", "message")}
                    for c in st.get("conditions") or []
                },
                "policies": [p.name for p in in_force],
                "approvals": [
                    _approval(r["name"], approvals.get(r["name"])) for r in spec.get("approvals") or []
                ],
                "evaluations": [
                    _evaluation(r["name"], evaluations.get(r["name"])) for r in spec.get("evaluations") or []
                ],
                "evaluationRequirements": [
                    {"policy": p.name, **r.model_dump(by_alias=True, exclude_none=True)}
                    for p in in_force
                    for r in p.spec.evaluations
                ],
                **_monitoring(md, in_force, templates),
                "gates": st.get("gates") or [],
                "servingRevision": st.get("servingRevision"),
                "lastKnownGood": st.get("lastKnownGood"),
                "knownGood": st.get("knownGood") or [],
                "rejectedDigests": st.get("rejectedDigests") or [],
                "quarantinedAt": st.get("quarantinedAt"),
                "metrics": st.get("metrics") or [],
                "history": st.get("history") or [],
                "historyDropped": st.get("historyDropped"),
                "events": [
                    {
                        "time": str(e.last_timestamp or e.event_time or e.metadata.creation_timestamp),
                        "type": e.type,
                        "reason": e.reason,
                        "message": e.message,
                    }
                    for e in events
                    if e.involved_object.uid == meta["uid"]
                ],
            }
        )
    return out


def _monitoring(
    md: Mapping[str, Any], in_force: list[GovernancePolicy], templates: Mapping[str, Any]
) -> dict[str, Any]:
    """The checks the model runs (its own tightened by the policies', as the operator runs them) and
    the MetricTemplates they use."""
    try:
        parsed = ModelDeployment.model_validate(
            {k: md[k] for k in ("apiVersion", "kind", "metadata", "spec")}
        )
    except pydantic.ValidationError:
        return {"monitoring": [], "templates": {}}
    checks = [c.model_dump(by_alias=True, exclude_none=True) for c in checks_for(parsed, in_force)]
    used = {str(c["templateRef"]["name"]) for c in checks if c.get("templateRef")}
    return {"monitoring": checks, "templates": {n: templates[n] for n in sorted(used) if n in templates}}


def _seal(obj: Mapping[str, Any]) -> dict[str, Any] | None:
    """Who sealed the evidence and when (its status seal, which the operator writes)."""
    seal = (obj.get("status") or {}).get("seal")
    return (
        {"keyId": seal.get("keyId"), "signedAt": seal.get("signedAt")} if isinstance(seal, Mapping) else None
    )


def _approval(name: str, obj: Mapping[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {"name": name, "found": False}
    spec, meta = obj["spec"], obj["metadata"]
    return {
        "name": name,
        "found": True,
        "uid": meta["uid"],
        "created": meta["creationTimestamp"],
        "role": spec["role"],
        "decision": spec["decision"],
        "digest": spec["model"]["digest"],
        "approvedBy": spec.get("approvedBy"),
        "expiresAt": spec.get("expiresAt"),
        "comment": spec.get("comment"),
        "sealed": bool(spec.get("seal")),
        "seal": _seal(obj),
    }


def _evaluation(name: str, obj: Mapping[str, Any] | None) -> dict[str, Any]:
    if obj is None:
        return {"name": name, "found": False}
    spec, meta = obj["spec"], obj["metadata"]
    return {
        "name": name,
        "found": True,
        "uid": meta["uid"],
        "dataset": spec["dataset"],
        "metrics": spec["metrics"],
        "evaluatedAt": spec["evaluatedAt"],
        "digest": spec["model"]["digest"],
        "submittedBy": spec.get("submittedBy"),
        "reportUri": spec.get("reportUri"),
        "sealed": bool(spec.get("seal")),
        "seal": _seal(obj),
    }


def render(models: list[dict[str, Any]], out: TextIO) -> None:
    for m in models:
        model = m["model"]
        out.write(f"== ModelDeployment {m['namespace']}/{m['name']} (uid {m['uid']})\n")
        out.write(
            f"   artifact: {model['name']} {model['version']} {model['digest']}\n   uri: {model['uri']}\n"
        )
        setter = (m.get("digestSetBy") or {}).get("username", "unknown")
        card = m["card"]
        out.write(f"   digest set by: {setter}; owner: {card.get('owner')}; risk: {card.get('riskLevel')}\n")
        out.write(f"   phase: {m['phase']}; policies in force: {', '.join(m['policies']) or 'none'}\n")
        for ctype, cond in m["conditions"].items():
            out.write(f"   {ctype:<12} {cond['status']:<8} {cond['reason']}: {cond['message']}\n")
        out.write("-- evidence\n")
        for a in m["approvals"]:
            if not a["found"]:
                out.write(f"   ModelApproval {a['name']}: NOT FOUND\n")
                continue
            who = a.get("approvedBy") or {}
            out.write(
                f"   ModelApproval {a['name']} ({a['uid']}): {a['decision']} as {a['role']} by "
                f"{who.get('username', 'unknown')} [{', '.join(who.get('groups') or [])}] at {a['created']}"
                f"{'; expires ' + a['expiresAt'] if a.get('expiresAt') else ''}; "
                f"{'sealed' if a['sealed'] else 'NOT SEALED'}; digest {a['digest']}\n"
            )
        for e in m["evaluations"]:
            if not e["found"]:
                out.write(f"   ModelEvaluation {e['name']}: NOT FOUND\n")
                continue
            who = (e.get("submittedBy") or {}).get("username", "unknown")
            values = ", ".join(f"{k}={v}" for k, v in sorted(e["metrics"].items()))
            out.write(
                f"   ModelEvaluation {e['name']} ({e['uid']}): {values} on {e['dataset']['name']} at "
                f"{e['evaluatedAt']} by {who}; {'sealed' if e['sealed'] else 'NOT SEALED'}\n"
            )
        out.write("-- gates\n")
        for g in m["gates"]:
            out.write(f"   [{'x' if g['satisfied'] else ' '}] {g['requirement']}: {g['message']}\n")
        out.write("-- revisions\n")
        for label, rev in (("serving", m["servingRevision"]), ("last known good", m["lastKnownGood"])):
            out.write(f"   {label}: {_rev(rev)}\n")
        for r in m["rejectedDigests"]:
            out.write(f"   rejected: {r['digest']} ({r['reason']} at {r['time']})\n")
        if m["quarantinedAt"]:
            out.write(f"   quarantined since {m['quarantinedAt']}\n")
        for r in m["metrics"]:
            out.write(
                f"   metric {r['name']}: {r['status']} value={r.get('value')} "
                f"failures={r.get('consecutiveFailures', 0)} at {r.get('checkedAt')}\n"
            )
        out.write("-- history\n")
        for h in m["history"]:
            rev = h.get("revision") or {}
            out.write(
                f"   {h['time']} {h['action']:<17} {rev.get('version', ''):<6} {h.get('message', '')}\n"
            )
        out.write("-- events\n")
        for e in m["events"]:
            out.write(f"   {e['time']} {e['type']:<7} {e['reason']:<17} {e['message']}\n")
        out.write("\n")


def _rev(r: Mapping[str, Any] | None) -> str:
    return f"{r['version']} {r['digest']} image {r['image']} since {r.get('admittedAt')}" if r else "none"


def report(
    name: str | None,
    namespace: str,
    output: str,
    out: TextIO,
    html: str | None = None,
    prometheus: str | None = None,
) -> int:
    """Connected by the caller (cli/kube.py); API errors and a missing model reach it as exceptions."""
    from modelgate.cli import htmlreport

    if html and not name:
        raise CliError("--html writes one model's page: name the ModelDeployment", 2)
    problem = htmlreport.check_url(prometheus) if html else None
    if problem:
        raise CliError(problem, 2)
    models = gather(namespace, name)
    if html:
        return htmlreport.write(models[0], html, prometheus, out)
    if output == "json":
        out.write(json.dumps(models, indent=2, default=str) + "\n")
    elif output == "yaml":
        out.write(yaml.safe_dump(json.loads(json.dumps(models, default=str)), sort_keys=False))
    else:
        render(models, out)
    return 0
