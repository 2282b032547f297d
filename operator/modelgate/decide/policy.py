"""Which GovernancePolicies are in force for a ModelDeployment.

A policy applies when its namespaceSelector matches the labels of the deployment's namespace (an
absent selector selects every namespace) and its riskLevels is empty or names the risk level of the
deployment's model card. Every applying policy is in force at once; their requirements add up (see
modelgate.decide.gates). Selection is pure: the caller reads the namespace's labels and the policies,
this module only decides.

The result is sorted by policy name so that gates, messages and status come out in the same order
on every reconcile, whatever order the informer cache returned the policies in.

Reading fails closed: a policy that does not parse is kept as a stand-in with its error and the
scope that could be read (`read_policy`); it selects what it could select and blocks it (the gate
engine's PolicyInvalid gate), and the operator reports the error in the policy's Valid condition.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import Any, get_args

import pydantic

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import GovernancePolicy, LabelSelector, RiskLevel
from modelgate.decide.conditions import Cond, merge_conditions


def selects_namespace(policy: GovernancePolicy, namespace_labels: Mapping[str, str]) -> bool:
    """Whether the policy's namespaceSelector matches the namespace; absent selects every namespace."""
    selector = policy.spec.namespace_selector
    return selector is None or selector.matches(dict(namespace_labels))


def covers_risk_level(policy: GovernancePolicy, risk_level: str) -> bool:
    """Whether the policy applies to models of this risk level; empty riskLevels covers all. A policy
    that asks for the risk level to be confirmed applies at every level: the level that would leave
    it out is the deployer's own claim, the very thing to confirm."""
    return (
        not policy.spec.risk_levels
        or risk_level in policy.spec.risk_levels
        or policy.spec.risk_level_confirmation is not None
    )


def select_policies(
    policies: Iterable[GovernancePolicy], namespace_labels: Mapping[str, str], risk_level: str
) -> list[GovernancePolicy]:
    """The policies in force for a model of `risk_level` in a namespace labelled `namespace_labels`,
    sorted by name."""
    selected = [
        p for p in policies if selects_namespace(p, namespace_labels) and covers_risk_level(p, risk_level)
    ]
    return sorted(selected, key=lambda p: p.name)


# --- reading policies (fail closed) ----------------------------------------------------------------


def read_policy(raw: Mapping[str, Any]) -> GovernancePolicy:
    """The policy, or a stand-in when it does not parse (GovernancePolicy.stand_in): a broken policy
    is never dropped, it blocks every model it could select. The stand-in keeps what scope could be
    read: the namespaceSelector (an unreadable one selects every namespace) and the riskLevels
    (unreadable: all)."""
    try:
        return GovernancePolicy.model_validate(dict(raw))
    except pydantic.ValidationError as err:
        spec = raw.get("spec") if isinstance(raw.get("spec"), Mapping) else {}
        assert isinstance(spec, Mapping)
        meta = raw.get("metadata") if isinstance(raw.get("metadata"), Mapping) else {}
        assert isinstance(meta, Mapping)
        return GovernancePolicy.stand_in(
            str(meta.get("name") or ""),
            describe_error(err),
            _readable(LabelSelector, spec.get("namespaceSelector")),
            _risk_levels(spec.get("riskLevels")),
            metadata={k: meta[k] for k in ("uid", "generation") if k in meta},
        )


def describe_error(err: pydantic.ValidationError) -> str:
    """ "spec.approvals.0.approvers: approvers must name at least one user or group; ..." (bounded)."""
    parts = []
    for e in err.errors()[:5]:
        where = ".".join(str(x) for x in e.get("loc", ()))
        parts.append(f"{where}: {e.get('msg', '')}" if where else str(e.get("msg", "")))
    more = len(err.errors()) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def _readable(cls: type[LabelSelector], raw: Any) -> LabelSelector | None:
    if raw is None:
        return None
    try:
        return cls.model_validate(raw)
    except pydantic.ValidationError:
        return None


def _risk_levels(raw: Any) -> list[RiskLevel]:
    levels = get_args(RiskLevel)
    if isinstance(raw, list) and raw and all(x in levels for x in raw):
        return [x for x in raw if x in levels]
    return []


def parse_policies(index: Mapping[Any, Any]) -> list[GovernancePolicy]:
    """Every policy in the operator's policies index (Kopf: key -> store of one value), stand-ins of
    unreadable ones included."""
    out = []
    for key in index:
        store = index.get(key)
        policy = next(iter(store), None) if store is not None else None
        if isinstance(policy, GovernancePolicy):
            out.append(policy)
    return out


def policy_status(
    policy: GovernancePolicy, body: Mapping[str, Any], now: dt.datetime
) -> dict[str, Any] | None:
    """The status to write on a GovernancePolicy (its Valid condition), or None when the stored
    status already says it (no write, no watch event, no churn)."""
    meta = body.get("metadata") or {}
    generation = int(meta.get("generation") or 0)
    old = dict(body.get("status") or {})
    if policy.invalid is None:
        cond = Cond(c.VALID, c.TRUE, c.POLICY_VALID, "the operator reads this policy and enforces it")
    else:
        cond = Cond(
            c.VALID,
            c.FALSE,
            c.POLICY_INVALID,
            f"{policy.invalid}; the policy blocks every model it could select until it is fixed",
        )
    new = {
        "observedGeneration": generation,
        "conditions": merge_conditions(old.get("conditions") or [], [cond], generation, now),
    }
    return None if all(old.get(k) == v for k, v in new.items()) else new
