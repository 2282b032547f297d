"""`modelgate status`: what a cluster admin asks first — is it serving, and if not, what is missing?

modelgate status -n fraud-prod                 # one line per ModelDeployment (-o wide: and why)
modelgate status -n fraud-prod fraud-detector  # conditions, unsatisfied gates, revisions, history
modelgate status -A -o yaml                    # the objects, as kubectl prints them
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from modelgate.api.v1alpha1 import GROUP, VERSION
from modelgate.cli.kube import CliError, Session, api_error
from modelgate.cli.output import as_list, dump, table

PLURAL = "modeldeployments"


def get_model(session: Session, name: str) -> dict[str, Any]:
    """The ModelDeployment `name` in the session's namespace; errors become CliError lines."""
    try:
        obj: dict[str, Any] = session.custom.get_namespaced_custom_object(
            GROUP, VERSION, session.namespace, PLURAL, name
        )
    except Exception as e:
        raise api_error(e, f"ModelDeployment {session.namespace}/{name}", session) from e
    return obj


def _cond(obj: Mapping[str, Any], ctype: str) -> str:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == ctype:
            return str(c.get("status"))
    return "-"


def _rev(r: Mapping[str, Any] | None) -> str:
    return f"{r['version']} ({r['digest'][:19]}…) since {r.get('admittedAt', '?')}" if r else "none"


def _why(obj: Mapping[str, Any]) -> str:
    """-o wide's REASON: the first unsatisfied gate, else the Ready condition's reason."""
    st = obj.get("status") or {}
    failing = [g for g in st.get("gates") or [] if not g.get("satisfied")]
    if failing:
        return f"{failing[0].get('reason', '')}: {failing[0].get('requirement', '')}"
    for c in st.get("conditions") or []:
        if c.get("type") == "Ready":
            return str(c.get("reason", "-"))
    return "-"


def render_table(items: Sequence[Mapping[str, Any]], out: TextIO, wide: bool = False) -> None:
    header = ("NAMESPACE", "NAME", "MODEL", "VERSION", "PHASE", "APPROVED", "READY", "SERVING")
    rows: list[tuple[str, ...]] = [(*header, "DIGEST", "REASON") if wide else header]
    for o in items:
        st, spec = o.get("status") or {}, o["spec"]
        serving = (st.get("servingRevision") or {}).get("version", "-")
        row: tuple[str, ...] = (
            o["metadata"]["namespace"],
            o["metadata"]["name"],
            spec["model"]["name"],
            spec["model"]["version"],
            st.get("phase", "-"),
            _cond(o, "Approved"),
            _cond(o, "Ready"),
            serving,
        )
        if wide:
            row += (spec["model"]["digest"][:19] + "…", _why(o))
        rows.append(row)
    table(rows, out)


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


def status(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    if args.name:
        if args.all_namespaces:
            raise CliError("a name needs one namespace: drop -A, or give -n", code=2)
        obj = get_model(session, args.name)
        if args.output in ("json", "yaml"):
            dump(obj, args.output, out)
        else:
            render_one(obj, out)
        return 0
    items = list_models(session, None if args.all_namespaces else session.namespace)
    if args.output in ("json", "yaml"):
        dump(as_list(items), args.output, out)
    elif not items:
        where = "any namespace" if args.all_namespaces else f"namespace {session.namespace}"
        out.write(f"No ModelDeployments in {where}.\n")
    else:
        render_table(items, out, wide=args.output == "wide")
    return 0


def list_models(session: Session, namespace: str | None) -> list[dict[str, Any]]:
    try:
        if namespace:
            res = session.custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
        else:
            res = session.custom.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    except Exception as e:
        raise api_error(e, "", session) from e
    return list(res["items"])
