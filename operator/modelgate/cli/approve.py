"""`modelgate approve|reject NAME --role R`: a ModelApproval for exactly what the ModelDeployment
asks for now, created as the calling user.

The approval names the model name, version and digest read from the ModelDeployment at this moment;
the admission webhook fills in the revision it covers and stamps approvedBy from the request's
authenticated user. This command never writes approvedBy: who approved is the API server's word,
not the client's. It prints the name the API server gave the object and the identity it stamped.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any, TextIO

from modelgate.api.v1alpha1 import GROUP, VERSION, parse_duration
from modelgate.cli.kube import CliError, Session, api_error
from modelgate.cli.output import dump
from modelgate.cli.status import get_model

RISK_LEVELS = ("minimal", "limited", "high")


def expiry(text: str | None, now: dt.datetime) -> str | None:
    """--expires: a duration from now (30d, 12h) or an RFC 3339 time; RFC 3339 out."""
    if not text:
        return None
    try:
        at = now + parse_duration(text)
    except ValueError:
        try:
            at = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise CliError(
                f"--expires {text}: want a duration such as 30d or 12h, or a time such as "
                "2027-01-31T00:00:00Z",
                code=2,
            ) from None
    if at.tzinfo is None:
        raise CliError(f"--expires {text}: give a time zone (for example a trailing Z)", code=2)
    if at <= now:
        raise CliError(f"--expires {text}: the time is not in the future", code=2)
    return at.astimezone(dt.UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def approval_manifest(
    md: dict[str, Any],
    role: str,
    decision: str,
    *,
    comment: str | None = None,
    expires_at: str | None = None,
    risk_level: str | None = None,
) -> dict[str, Any]:
    """The ModelApproval for the model artifact `md` requests now. No approvedBy, no revision: the
    webhook writes both."""
    model = md["spec"]["model"]
    spec: dict[str, Any] = {
        "model": {"name": model["name"], "version": model["version"], "digest": model["digest"]},
        "role": role,
        "decision": decision,
    }
    for key, value in (("comment", comment), ("expiresAt", expires_at), ("riskLevel", risk_level)):
        if value:
            spec[key] = value
    prefix = f"{md['metadata']['name']}-{model['version']}-{role}"[:50].rstrip("-.").lower() + "-"
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ModelApproval",
        "metadata": {"generateName": prefix, "namespace": md["metadata"]["namespace"]},
        "spec": spec,
    }


def decide(session: Session, args: argparse.Namespace, out: TextIO, decision: str) -> int:
    """approve or reject: read the ModelDeployment, create the ModelApproval, report the stamp."""
    if decision == "rejected" and not (args.comment or "").strip():
        raise CliError("reject needs --comment: say why, for the people who will read the trail", code=2)
    md = get_model(session, args.name)
    manifest = approval_manifest(
        md,
        args.role,
        decision,
        comment=args.comment,
        expires_at=expiry(args.expires, dt.datetime.now(dt.UTC)),
        risk_level=getattr(args, "risk_level", None),
    )
    try:
        created: dict[str, Any] = session.custom.create_namespaced_custom_object(
            GROUP, VERSION, session.namespace, "modelapprovals", manifest
        )
    except Exception as e:
        raise api_error(e, "", session) from e
    if args.output in ("json", "yaml"):
        dump(created, args.output, out)
        return 0
    spec = created["spec"]
    who = (spec.get("approvedBy") or {}).get("username", "(not stamped: is the webhook running?)")
    model = spec["model"]
    out.write(
        f"modelapproval.modelgate.io/{created['metadata']['name']} created: {decision} "
        f"{model['name']} {model['version']} {model['digest']} as role {spec['role']}, by {who}\n"
    )
    return 0
