"""`modelgate status`: what a cluster admin asks first — is it serving, and if not, what is missing?

modelgate status -n fraud-prod                 # one line per ModelDeployment
modelgate status -n fraud-prod fraud-detector  # conditions, unsatisfied gates, revisions, history
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TextIO

import kubernetes
from kubernetes.client.exceptions import ApiException

from modelgate.api.v1alpha1 import GROUP, VERSION


def _cond(obj: Mapping[str, Any], ctype: str) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return str(c.get("status"))
    return "-"


def _rev(r: Mapping[str, Any] | None) -> str:
    return f"{r['version']} ({r['digest'][:19]}…) since {r.get('admittedAt', '?')}" if r else "none"


def render_table(items: list[Mapping[str, Any]], out: TextIO) -> None:
    rows = [("NAMESPACE", "NAME", "MODEL", "VERSION", "PHASE", "APPROVED", "READY", "SERVING")]
    for o in items:
        st, spec = o.get("status") or {}, o["spec"]
        serving = (st.get("servingRevision") or {}).get("version", "-")
        rows.append(
            (
                o["metadata"]["namespace"],
                o["metadata"]["name"],
                spec["model"]["name"],
                spec["model"]["version"],
                st.get("phase", "-"),
                _cond(o, "Approved"),
                _cond(o, "Ready"),
                serving,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")


def render_one(o: Mapping[str, Any], out: TextIO) -> None:
    st, spec, meta = o.get("status") or {}, o["spec"], o["metadata"]
    out.write(
        f"ModelDeployment {meta['namespace']}/{meta['name']}: {spec['model']['name']} "
        f"{spec['model']['version']} ({spec['model']['digest']})\n"
    )
    out.write(
        f"  phase: {st.get('phase', '-')}  (observedGeneration {st.get('observedGeneration', '-')}, "
        f"generation {meta.get('generation')})\n"
    )
    out.write(f"  serving:         {_rev(st.get('servingRevision'))}\n")
    out.write(f"  last known good: {_rev(st.get('lastKnownGood'))}\n")
    if st.get("compliance"):
        out.write(f"  compliance:      {st['compliance']}\n")
    _recertification(st.get("recertification"), out)
    out.write("  conditions:\n")
    for c in st.get("conditions") or []:
        out.write(f"    {c['type']:<12} {c['status']:<8} {c['reason']}: {c.get('message', '')}\n")
    gates = st.get("gates") or []
    missing = [g for g in gates if not g.get("satisfied")]
    out.write(f"  gates: {len(gates) - len(missing)}/{len(gates)} satisfied\n")
    for g in gates:
        out.write(f"    [{'x' if g.get('satisfied') else ' '}] {g['requirement']}: {g.get('message', '')}\n")
    history = st.get("history") or []
    if history:
        out.write("  history (newest last):\n")
        for h in history[-10:]:
            rev = h.get("revision") or {}
            out.write(
                f"    {h['time']}  {h['action']:<14} {rev.get('version', '')}  {h.get('message', '')}\n"
            )


def _recertification(schedule: Mapping[str, Any] | None, out: TextIO) -> None:
    """When each approval requirement with a maxAge lapses, and who must approve again."""
    if not schedule:
        return
    out.write(f"  recertification: due by {schedule['dueAt']} (warning from {schedule['warnAt']})\n")
    for r in schedule.get("requirements") or []:
        out.write(
            f"    role {r['role']} (policy {r['policy']}, maxAge {r['maxAge']}): due by {r['dueAt']}, "
            f"new approval from {r['approvers']}\n"
        )
        for a in r.get("approvals") or []:
            out.write(f"      ModelApproval {a['name']} by {a['approvedBy']} lapses at {a['lapsesAt']}\n")


def status(name: str | None, namespace: str | None, kubeconfig: str | None, out: TextIO) -> int:
    try:
        kubernetes.config.load_kube_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
    except Exception:
        kubernetes.config.load_incluster_config()  # type: ignore[no-untyped-call]
    api: Any = kubernetes.client.CustomObjectsApi()
    try:
        if name:
            if not namespace:
                out.write("modelgate status: a name needs a namespace (-n)\n")
                return 2
            render_one(
                api.get_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments", name), out
            )
            return 0
        if namespace:
            items = api.list_namespaced_custom_object(GROUP, VERSION, namespace, "modeldeployments")["items"]
        else:
            items = api.list_cluster_custom_object(GROUP, VERSION, "modeldeployments")["items"]
    except ApiException as e:
        out.write(f"modelgate status: {e.status} {e.reason}\n")
        return 1
    render_table(items, out)
    return 0
