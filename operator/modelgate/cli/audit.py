"""`modelgate audit`: every model in the cluster that needs an auditor's attention, for a person or a
CronJob.

    modelgate audit                 # a table; exit 1 when anything is overdue
    modelgate audit --within 30d    # due soon: lapsing within 30 days (default: the policies' warnBefore)
    modelgate audit -o json
    modelgate audit -n fraud-prod   # one namespace

Lists models serving NotCompliant under onRevocation: keep, approvals lapsed (maxAge) or due soon,
evidence older than the policy allows while serving, and quarantines (decide/findings.py). Reads
ModelDeployments cluster-wide only: the `modelgate-auditor` ClusterRole suffices. Exit status: 0
when nothing is overdue ("due soon" alone is 0), 1 when something is, 2 when the audit could not
run (one line on stderr: no kubeconfig, API server unreachable, access denied, a bad --within).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any, TextIO

import urllib3
from kubernetes.client.exceptions import ApiException

from modelgate.api.v1alpha1 import GROUP, VERSION, parse_duration
from modelgate.cli.kube import CliError, Session
from modelgate.decide.conditions import rfc3339
from modelgate.decide.findings import Finding, findings

TIMEOUT = 30
"""Seconds for the one list call: a CronJob must not hang on an unreachable API server."""


def audit(session: Session, args: argparse.Namespace, out: TextIO, now: dt.datetime | None = None) -> int:
    """The audit over every ModelDeployment (or those of -n): exit 1 when anything is overdue."""
    try:
        window = parse_duration(args.within) if args.within is not None else None
    except ValueError as e:
        raise CliError(f"audit: --within: {e}", code=2) from None
    items = _models(session, args.namespace)
    now = now or dt.datetime.now(dt.UTC)
    found = [f for obj in sorted(items, key=_key) for f in findings(obj, now, window)]
    if args.output == "json":
        report = {
            "time": rfc3339(now),
            "within": args.within,
            "models": len(items),
            "overdue": any(f.overdue for f in found),
            "findings": [f.as_json() for f in found],
        }
        out.write(json.dumps(report, indent=2) + "\n")
    else:
        render(found, len(items), out)
    return 1 if any(f.overdue for f in found) else 0


def _models(session: Session, namespace: str | None) -> list[dict[str, Any]]:
    """Every ModelDeployment in the cluster (or the namespace); a CliError (exit 2: the audit did not
    run, which a CronJob must tell from "overdue") with one line for what went wrong."""
    api, host = session.custom, session.server
    plural, timeout = "modeldeployments", {"_request_timeout": TIMEOUT}
    try:
        if namespace:
            return list(
                api.list_namespaced_custom_object(GROUP, VERSION, namespace, plural, **timeout)["items"]
            )
        return list(api.list_cluster_custom_object(GROUP, VERSION, plural, **timeout)["items"])
    except ApiException as e:
        if e.status in (401, 403):
            where = f"in {namespace}" if namespace else "cluster-wide"
            raise CliError(
                f"audit: access denied listing ModelDeployments {where} "
                f"({e.status} {e.reason}): the modelgate-auditor ClusterRole is enough",
                code=2,
            ) from None
        raise CliError(
            f"audit: listing ModelDeployments at {host} failed: {e.status} {e.reason}", code=2
        ) from None
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise CliError(f"audit: cannot reach the API server at {host}: {type(e).__name__}", code=2) from None


def _key(obj: dict[str, Any]) -> tuple[str, str]:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace")), str(meta.get("name"))


def render(found: Sequence[Finding], models: int, out: TextIO) -> None:
    """A table, one row per finding, then a one-line summary."""
    if found:
        rows = [("NAMESPACE", "NAME", "MODEL", "VERSION", "PHASE", "FINDING", "AT", "DETAIL")]
        rows += [
            (f.namespace, f.name, f.model, f.version, f.phase, f.kind, f.at or "-", _short(f.message))
            for f in found
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
        for r in rows:
            out.write(
                "  ".join([*(v.ljust(w) for v, w in zip(r, widths, strict=False)), r[-1]]).rstrip() + "\n"
            )
    overdue = sum(1 for f in found if f.overdue)
    out.write(f"{models} ModelDeployment(s) audited: {overdue} overdue, {len(found) - overdue} due soon\n")


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
