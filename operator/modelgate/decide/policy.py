"""Which GovernancePolicies are in force for a ModelDeployment.

A policy applies when its namespaceSelector matches the labels of the deployment's namespace (an
absent selector selects every namespace) and its riskLevels is empty or names the risk level of the
deployment's model card. Every applying policy is in force at once; their requirements add up (see
modelgate.decide.gates). Selection is pure: the caller reads the namespace's labels and the policies,
this module only decides.

The result is sorted by policy name so that gates, messages and status come out in the same order
on every reconcile, whatever order the informer cache returned the policies in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelgate.api.v1alpha1 import GovernancePolicy


def selects_namespace(policy: GovernancePolicy, namespace_labels: Mapping[str, str]) -> bool:
    """Whether the policy's namespaceSelector matches the namespace; absent selects every namespace."""
    selector = policy.spec.namespace_selector
    return selector is None or selector.matches(dict(namespace_labels))


def covers_risk_level(policy: GovernancePolicy, risk_level: str) -> bool:
    """Whether the policy applies to models of this risk level; empty riskLevels covers all."""
    return not policy.spec.risk_levels or risk_level in policy.spec.risk_levels


def select_policies(
    policies: Iterable[GovernancePolicy], namespace_labels: Mapping[str, str], risk_level: str
) -> list[GovernancePolicy]:
    """The policies in force for a model of `risk_level` in a namespace labelled `namespace_labels`,
    sorted by name."""
    selected = [
        p for p in policies if selects_namespace(p, namespace_labels) and covers_risk_level(p, risk_level)
    ]
    return sorted(selected, key=lambda p: p.name)
