"""`modelgate explain NAME`: why the model is or is not serving, one line per missing piece, each
with the command that supplies it and who may run it (the decision is decide/explain.py's).

The GovernancePolicies are read to name the approvers; someone who may not read them still gets
every step, with "see GovernancePolicy P" for who.
"""

from __future__ import annotations

import argparse
from dataclasses import asdict
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException
from pydantic import ValidationError

from modelgate.api.v1alpha1 import GROUP, VERSION, GovernancePolicy, ModelDeployment
from modelgate.cli.kube import CliError, Session
from modelgate.cli.output import dump
from modelgate.cli.status import get_model
from modelgate.decide.explain import explain as decide


def typed(obj: dict[str, Any]) -> ModelDeployment:
    """The ModelDeployment as the operator's model, or a CliError naming what does not parse."""
    try:
        return ModelDeployment.model_validate(obj)
    except ValidationError as e:
        name = obj.get("metadata", {}).get("name")
        raise CliError(
            f"ModelDeployment {name} does not match modelgate's schema: {e.errors()[0]['msg']}"
        ) from e


def policies(session: Session) -> list[GovernancePolicy]:
    """Every readable GovernancePolicy; none when the caller may not list them."""
    try:
        items = session.custom.list_cluster_custom_object(GROUP, VERSION, "governancepolicies")["items"]
    except ApiException as e:
        if e.status in (401, 403):
            return []
        raise
    out = []
    for item in items:
        try:
            out.append(GovernancePolicy.model_validate(item))
        except ValidationError:
            continue  # an invalid policy is named by its own gate (PolicyInvalid)
    return out


def explain(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    md = typed(get_model(session, args.name))
    result = decide(md, policies(session))
    if args.output in ("json", "yaml"):
        dump(
            {
                "serving": result.serving,
                "summary": result.summary,
                "steps": [asdict(s) for s in result.steps],
            },
            args.output,
            out,
        )
        return 0
    out.write(result.summary + "\n")
    for step in result.steps:
        out.write(f"- {step.missing} | run: {step.command} | who may: {step.who}\n")
    return 0
