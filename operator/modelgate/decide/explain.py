"""Why a model is or is not serving, as steps a person can take: `modelgate explain` / `kubectl
modelgate explain`. Pure.

The operator already wrote what is missing into status (`gates`, conditions); this module turns each
unsatisfied gate into a `Step`: what is missing (the gate's own message), the exact command that
would supply it, and who may run it, taken from the GovernancePolicy the gate names (its approvers,
its evaluators) or from the shipped roles (deployer, cluster admin). Gates are recognised by their
requirement text, which decide/gates.py and decide/verdict.py write; tests/unit/test_explain.py feeds
this module the gates the real engine produces, so the two cannot drift apart silently.

With every gate satisfied, what remains is the operator's part: judging the current generation,
rolling the Deployment out. Those become steps too.

`reached` and `blocking_reason` serve `wait`: whether a ModelDeployment has reached a state, judged
on its current generation only (kstatus: a status older than the spec says nothing about the spec).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import Approvers, GovernancePolicy, ModelDeployment
from modelgate.api.v1alpha1.modeldeployment import GateResult
from modelgate.decide.approvals import describe_approvers
from modelgate.decide.evidence import short_digest

Target = Literal["admitted", "serving", "ready", "blocked"]
TARGETS: Final[tuple[Target, ...]] = ("admitted", "serving", "ready", "blocked")

DEPLOYER: Final = "the model's deployer (role modelgate-deployer)"
ADMIN: Final = "a cluster admin (GovernancePolicies are cluster-scoped)"
EVALUATOR: Final = "anyone with role modelgate-evaluator (no policy limits the evaluators)"
PLUGIN: Final = "kubectl modelgate"


@dataclass(frozen=True)
class Step:
    """One missing piece: what, the command that supplies it, who may run that command."""

    missing: str
    command: str
    who: str


@dataclass(frozen=True)
class Explanation:
    serving: bool
    summary: str
    steps: tuple[Step, ...]


def explain(md: ModelDeployment, policies: Sequence[GovernancePolicy]) -> Explanation:
    """Every missing piece of `md`, in gate order, then the operator's part once the gates pass."""
    by_name = {p.name: p for p in policies}
    status = md.status
    gates = [g for g in (status.gates if status else []) if not g.satisfied]
    steps = [_step(g, md, by_name) for g in gates] if _current(md) else []
    steps += _operator_steps(md, bool(gates))
    model = md.spec.model
    subject = f"{md.name} ({model.name} {model.version}, {short_digest(model.digest)})"
    phase = (status.phase if status else None) or "not yet judged"
    serving = phase == c.PHASE_SERVING and _current(md) and not steps
    if serving:
        return Explanation(True, f"{subject} is Serving: nothing is missing.", ())
    count = f"{len(steps)} thing{'s' if len(steps) != 1 else ''} missing"
    return Explanation(False, f"{subject} is not serving (phase {phase}): {count}.", tuple(steps))


# --- gates ----------------------------------------------------------------------------------------

_APPROVAL = re.compile(r"^approval role=(?P<role>\S+) \(policy (?P<policy>[^)]+)\)$")
_CONFIRMATION = re.compile(r"^risk level confirmation role=(?P<role>\S+) \(policy (?P<policy>[^)]+)\)$")
_EVALUATION = re.compile(r"^evaluation (?P<metric>\S+) \(policy (?P<policy>[^)]+)\)$")
_CARD = re.compile(r"^card\.(?P<field>\w+)$")
_REFERENCE = re.compile(r"^reference (?P<kind>ModelApproval|ModelEvaluation)/(?P<name>\S+)$")
_RENEWAL = re.compile(r"^new approval after (?P<why>quarantine|rollback)$")
_INVALID_POLICY = re.compile(r"^policy (?P<policy>\S+)$")
_REJECTION = re.compile(r"(?P<user>\S+) rejected .*? in ModelApproval (?P<name>[a-z0-9.-]+)")

Gate = GateResult
Policies = Mapping[str, GovernancePolicy]


def _step(gate: Gate, md: ModelDeployment, policies: Policies) -> Step:
    missing = f"{gate.requirement}: {gate.message}"
    for pattern, build in _BUILDERS:
        match = pattern.match(gate.requirement)
        if match:
            command, who = build(match.groupdict(), gate, md, policies)
            return Step(missing, command, who)
    return Step(missing, f"kubectl describe modeldeployment {md.name} -n {_ns(md)}", DEPLOYER)


def _approval(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    role, policy = m["role"], m["policy"]
    if gate.reason == c.APPROVAL_REJECTED:
        rejection = _REJECTION.search(gate.message)
        if rejection:
            who = f"{rejection['user']}, who rejected it (only its author withdraws a rejection)"
            return f"kubectl delete modelapproval {rejection['name']} -n {_ns(md)}", who
    return _approve(md, role), _approvers(policies.get(policy), role, policy, md)


def _confirmation(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    role, policy = m["role"], m["policy"]
    command = f"{_approve(md, role)} --risk-level {md.spec.card.risk_level}"
    return command, _approvers(policies.get(policy), role, policy, md)


def _renewal(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    roles = sorted({(p.name, r.role) for p in policies.values() for r in p.spec.approvals})
    if not roles:
        return _approve(md, "ROLE"), "an approver of a role a policy in force requires"
    who = "; ".join(_approvers(policies[p], r, p, md) for p, r in roles)
    return _approve(md, roles[0][1]), who


def _separation(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    setter = md.spec.digest_set_by.username if md.spec.digest_set_by else None
    if setter is None:
        return (
            f"kubectl apply -f <modeldeployment.yaml> -n {_ns(md)}",
            f"{DEPLOYER}: re-apply it through the admission webhook, which records who set the digest",
        )
    roles = sorted({r.role for p in policies.values() for r in p.spec.approvals}) or ["ROLE"]
    return _approve(
        md, roles[0]
    ), f"an approver of the required roles other than {setter}, who set the digest"


def _evaluation(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    metric, policy = m["metric"], policies.get(m["policy"])
    req = next((r for r in policy.spec.evaluations if r.metric == metric), None) if policy else None
    model = md.spec.model
    manifest = {
        "apiVersion": "modelgate.io/v1alpha1",
        "kind": "ModelEvaluation",
        "metadata": {"generateName": f"{md.name}-{model.version}-"},
        "spec": {
            "model": {"name": model.name, "version": model.version, "digest": model.digest},
            "dataset": {"name": (req.dataset if req and req.dataset else "DATASET"), "uri": "DATASET_URI"},
            "metrics": {metric: "VALUE"},
            "evaluatedAt": "RFC3339_TIME",
        },
    }
    command = f"kubectl create -n {_ns(md)} -f - <<< '{json.dumps(manifest, separators=(',', ':'))}'"
    if policy is None:
        return command, f"see GovernancePolicy {m['policy']} (could not be read)"
    if policy.spec.evaluators is None:
        return command, EVALUATOR
    return command, f"evaluators of policy {policy.name}: {_people(policy.spec.evaluators)}"


def _card(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    patch = json.dumps({"spec": {"card": {m["field"]: "..."}}}, separators=(",", ":"))
    return f"kubectl patch modeldeployment {md.name} -n {_ns(md)} --type merge -p '{patch}'", DEPLOYER


def _reference(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    field = "approvals" if m["kind"] == "ModelApproval" else "evaluations"
    refs = md.spec.approvals if field == "approvals" else md.spec.evaluations
    index = next((i for i, r in enumerate(refs) if r.name == m["name"]), 0)
    patch = json.dumps([{"op": "remove", "path": f"/spec/{field}/{index}"}], separators=(",", ":"))
    command = f"kubectl patch modeldeployment {md.name} -n {_ns(md)} --type json -p '{patch}'"
    return command, f"{DEPLOYER}; or create {m['kind']} {m['name']}"


def _no_policy(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    return "kubectl apply -f <governancepolicy.yaml> (its namespaceSelector selecting this namespace)", ADMIN


def _invalid_policy(
    m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies
) -> tuple[str, str]:
    return f"kubectl edit governancepolicy {m['policy']}", ADMIN


def _image(m: dict[str, str], gate: Gate, md: ModelDeployment, policies: Policies) -> tuple[str, str]:
    image = md.spec.serving.image
    patch = json.dumps({"spec": {"serving": {"image": f"{image}@sha256:DIGEST"}}}, separators=(",", ":"))
    return f"kubectl patch modeldeployment {md.name} -n {_ns(md)} --type merge -p '{patch}'", DEPLOYER


Builder = Callable[[dict[str, str], Gate, ModelDeployment, Policies], tuple[str, str]]
_BUILDERS: Final[tuple[tuple[re.Pattern[str], Builder], ...]] = (
    (_APPROVAL, _approval),
    (_CONFIRMATION, _confirmation),
    (_RENEWAL, _renewal),
    (re.compile(r"^separation of duties$"), _separation),
    (_EVALUATION, _evaluation),
    (_CARD, _card),
    (_REFERENCE, _reference),
    (re.compile(r"^policy$"), _no_policy),
    (re.compile(r"^image pinned$"), _image),
    (_INVALID_POLICY, _invalid_policy),
)


def _approve(md: ModelDeployment, role: str) -> str:
    return f"{PLUGIN} approve {md.name} -n {_ns(md)} --role {role}"


def _approvers(policy: GovernancePolicy | None, role: str, policy_name: str, md: ModelDeployment) -> str:
    if policy is None:
        return f"role {role}: see GovernancePolicy {policy_name} (could not be read)"
    reqs = [r for r in policy.spec.approvals if r.role == role]
    if not reqs:
        return f"role {role}: policy {policy_name} names no approvers for it"
    who = f"role {role} of policy {policy_name}: {_people(reqs[0].approvers)}"
    setter = md.spec.digest_set_by.username if md.spec.digest_set_by else None
    if policy.spec.separation_of_duties and setter:
        who += f", except {setter} (set the digest)"
    return who


def _people(approvers: Approvers) -> str:
    return describe_approvers(approvers).removeprefix("from ")


# --- the operator's part --------------------------------------------------------------------------


def _operator_steps(md: ModelDeployment, gates_failing: bool) -> list[Step]:
    ns, status = _ns(md), md.status
    if not _current(md):
        observed = status.observed_generation if status else None
        return [
            Step(
                f"the operator has not judged generation {md.metadata.get('generation')} yet "
                f"(last judged: {observed if observed is not None else 'none'})",
                "kubectl get pods -A -l app.kubernetes.io/name=modelgate-operator",
                "a cluster admin (is the operator running?)",
            )
        ]
    if gates_failing:
        return []
    admitted, ready = _condition(md, c.ADMITTED), _condition(md, c.READY)
    if admitted is not None and admitted[0] != c.TRUE:
        return [
            Step(
                f"not admitted: {admitted[1]}",
                f"kubectl describe modeldeployment {md.name} -n {ns}",
                DEPLOYER,
            )
        ]
    if ready is not None and ready[0] != c.TRUE:
        return [
            Step(
                f"serving is not ready: {ready[1]}",
                f"kubectl rollout status deployment/{md.name} -n {ns}",
                f"anyone who may read Deployments in {ns}",
            )
        ]
    return []


# --- wait -----------------------------------------------------------------------------------------


def reached(md: ModelDeployment, target: Target) -> bool:
    """Whether `md`'s current generation is in the state `target` names."""
    if not _current(md):
        return False
    phase = md.status.phase if md.status else None
    if target == "serving":
        return phase == c.PHASE_SERVING
    if target == "blocked":
        return phase == c.PHASE_BLOCKED
    cond = _condition(md, c.ADMITTED if target == "admitted" else c.READY)
    return cond is not None and cond[0] == c.TRUE


def blocking_reason(md: ModelDeployment) -> str:
    """The one thing that most plainly keeps `md` from serving, for a progress line."""
    status = md.status
    if not _current(md):
        return f"the operator has not judged generation {md.metadata.get('generation')} yet"
    failing = [g for g in (status.gates if status else []) if not g.satisfied]
    if failing:
        more = f" (+{len(failing) - 1} more)" if len(failing) > 1 else ""
        return f"{failing[0].requirement}: {failing[0].message}{more}"
    for ctype in (c.ADMITTED, c.READY):
        cond = _condition(md, ctype)
        if cond is not None and cond[0] != c.TRUE:
            return f"{ctype} {cond[0]}: {cond[1]}"
    return "nothing"


def progress(md: ModelDeployment) -> str:
    """phase, gates satisfied, and the blocking reason: what `wait` shows while it waits."""
    status = md.status
    gates = status.gates if status else []
    ok = sum(1 for g in gates if g.satisfied)
    phase = (status.phase if status else None) or "Pending"
    return f"{md.name}: {phase}, gates {ok}/{len(gates)}, {blocking_reason(md)}"


def _current(md: ModelDeployment) -> bool:
    generation = md.metadata.get("generation")
    observed = md.status.observed_generation if md.status else None
    return observed is not None and (generation is None or observed >= int(generation))


def _condition(md: ModelDeployment, ctype: str) -> tuple[str, str] | None:
    for cond in md.status.conditions if md.status else []:
        if cond.type == ctype:
            if cond.observed_generation is not None and cond.observed_generation < int(
                md.metadata.get("generation") or 0
            ):
                return (c.UNKNOWN, f"condition {ctype} is older than the spec")
            return (cond.status, cond.message)
    return None


def _ns(md: ModelDeployment) -> str:
    return md.namespace or "default"
