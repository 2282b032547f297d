"""PolicyReports: every gate result of a namespace's ModelDeployments in the format policy tooling
reads (wgpolicyk8s.io/v1alpha2, the Kubernetes Policy WG's PolicyReport: Policy Reporter, Kyverno's
CLI, `kubectl get policyreports`). Pure: the runtime hands in the stored reports, the models as the
index holds them, the policies that select them and `now`.

One report per namespace, named `modelgate`, labelled app.kubernetes.io/managed-by=modelgate. It has
one result per ModelDeployment per gate of its status.gates (what the operator decided, not a
second judgement), per policy that asks for the gate:

- `policy`: the GovernancePolicy. A gate that names its policy ("approval role=ethics-board (policy
  prod)") is that policy's; a card field, a pinned image or separation of duties belongs to each
  selecting policy that requires it (one result each); gates no policy asks for (no policy in force,
  a referenced object missing, a new approval after a rollback or quarantine) are modelgate's own,
  `policy: modelgate/builtin` (a name no GovernancePolicy can have).
- `rule`: the requirement without its policy ("approval role=ethics-board", "card.owner",
  "evaluation accuracy"): short and stable.
- `result`: satisfied -> pass; unsatisfied -> fail; a policy the operator could not read (its gate
  blocks, PolicyInvalid) -> error; satisfied but due for recertification (an approval requirement
  inside its warning window, status.recertification) or admitted without any policy by the
  operator flag -> warn. `scored` is false for warn only (the API's definition of warn).
- `message`: the gate's message; `category`: what kind of requirement; `severity`: the model card's
  risk level (high, medium for limited, low for minimal); `properties`: the gate's reason and the
  model version; `resources`: the ModelDeployment; `timestamp`: when the result was first reported
  as it is (kept from the stored report while result and message stay, so a rebuild changes
  nothing).

Size: etcd stores an object of at most 1.5 MiB. A report's results are kept under `BUDGET` bytes:
when a namespace's results do not fit, they are split into 2, 4, 8... shards, each model in the
shard its name hashes to (`modelgate`, `modelgate-1`, ...), so that a change of one model rewrites
one shard. The number of shards only shrinks when the smaller number fits in half the budget (no
flapping at the edge).
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from modelgate.api import conditions as c
from modelgate.api.v1alpha1 import API_VERSION as MODELGATE_API_VERSION
from modelgate.api.v1alpha1 import GovernancePolicy

GROUP: Final = "wgpolicyk8s.io"
VERSION: Final = "v1alpha2"
PLURAL: Final = "policyreports"
CRD_NAME: Final = f"{PLURAL}.{GROUP}"
NAME: Final = "modelgate"
SOURCE: Final = "modelgate"
LABELS: Final = {"app.kubernetes.io/managed-by": "modelgate"}
SELECTOR: Final = "app.kubernetes.io/managed-by=modelgate"
BUILTIN: Final = "modelgate/builtin"
"""The `policy` of gates no GovernancePolicy asks for; a slash is not allowed in a policy's name."""
BUDGET: Final = 1_000_000
"""Bytes of results (compact JSON) one report may hold: etcd's default limit is 1.5 MiB."""
MAX_SHARDS: Final = 256
RESULTS: Final = ("pass", "fail", "warn", "error", "skip")
SEVERITY: Final = {"high": "high", "limited": "medium", "minimal": "low"}
"""The model card's riskLevel -> the result's severity (the API's enum: high, medium, low)."""
ERROR_REASONS: Final = frozenset({c.POLICY_INVALID})
"""Gates that could not be evaluated: the policy itself is unreadable."""
_OWNED_BY: Final = re.compile(r"^(?P<rule>.+) \(policy (?P<policy>[^()]+)\)$")
_CATEGORIES: Final = (
    ("approval ", "Approval"),
    ("risk level confirmation ", "Approval"),
    ("separation of duties", "Approval"),
    ("evaluation ", "Evaluation"),
    ("card.", "Model card"),
    ("reference ", "Reference"),
    ("new approval after ", "Renewal"),
)


@dataclass(frozen=True)
class Model:
    """One ModelDeployment as the report reads it: its body as the index holds it (status.gates,
    status.recertification, spec.card.riskLevel, spec.model.version) and the policies that select
    it (decide/policy.py `select_policies`)."""

    body: Mapping[str, Any]
    policies: Sequence[GovernancePolicy]


# --- one gate ----------------------------------------------------------------------------------


def owners(requirement: str, policies: Sequence[GovernancePolicy]) -> list[tuple[str, str]]:
    """(policy, rule) for each policy that asks for the gate `requirement` (see the module
    docstring); modelgate's own when none does."""
    owned = _OWNED_BY.match(requirement)
    if owned:
        return [(owned["policy"], owned["rule"])]
    if requirement.startswith("policy "):  # a selecting policy that could not be read
        return [(requirement.removeprefix("policy "), "policy readable")]
    if requirement.startswith("card."):
        field = requirement.removeprefix("card.")
        requiring = [p.name for p in policies if field in p.spec.required_card_fields]
    elif requirement == "image pinned":
        requiring = [p.name for p in policies if p.spec.require_image_digest]
    elif requirement == "separation of duties":
        requiring = [p.name for p in policies if p.spec.separation_of_duties]
    else:
        requiring = []
    return [(name, requirement) for name in sorted(requiring)] or [(BUILTIN, requirement)]


def category(requirement: str) -> str:
    return next((name for prefix, name in _CATEGORIES if requirement.startswith(prefix)), "Policy")


def outcome(gate: Mapping[str, Any], due: str | None) -> str:
    """pass, fail, warn or error for one gate; `due` is when its recertification is due, if its
    warning window is open."""
    if not gate.get("satisfied"):
        return "error" if gate.get("reason") in ERROR_REASONS else "fail"
    if due is not None or gate.get("reason") == c.NO_POLICY:  # NoPolicy satisfied: the operator flag
        return "warn"
    return "pass"


def _due(status: Mapping[str, Any], now: datetime) -> dict[tuple[str, str], str]:
    """(policy, "approval role=R") -> dueAt, for approval requirements whose recertification warning
    window is open (status.recertification.requirements[].warnAt has passed)."""
    recert = status.get("recertification")
    out: dict[tuple[str, str], str] = {}
    if not isinstance(recert, Mapping):
        return out
    for req in recert.get("requirements") or []:
        if not isinstance(req, Mapping):
            continue
        warn_at = _time(req.get("warnAt"))
        if warn_at is not None and warn_at <= now:
            out[(str(req.get("policy")), f"approval role={req.get('role')}")] = str(req.get("dueAt"))
    return out


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


# --- one model ---------------------------------------------------------------------------------


def model_results(model: Model, now: datetime) -> list[dict[str, Any]]:
    """The results of one ModelDeployment, in gate order (timestamps not set yet); none while it is
    undecided (no status.gates) or being deleted."""
    body = model.body
    meta = body.get("metadata") or {}
    status = body.get("status") or {}
    if meta.get("deletionTimestamp"):
        return []
    spec = body.get("spec") or {}
    severity = SEVERITY.get(str((spec.get("card") or {}).get("riskLevel")))
    version = str((spec.get("model") or {}).get("version") or "")
    resource = {
        "apiVersion": MODELGATE_API_VERSION,
        "kind": "ModelDeployment",
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "uid": meta.get("uid"),
    }
    due = _due(status, now)
    out = []
    for gate in status.get("gates") or []:
        requirement = str(gate.get("requirement") or "")
        for policy, rule in owners(requirement, model.policies):
            when = due.get((policy, rule))
            result = outcome(gate, when)
            message = str(gate.get("message") or "")
            if result == "warn" and when is not None:
                message = f"{message}; due for recertification by {when}"
            entry: dict[str, Any] = {
                "policy": policy,
                "rule": rule,
                "result": result,
                "scored": result != "warn",
                "message": message,
                "source": SOURCE,
                "category": category(requirement),
                "resources": [resource],
                "properties": {"reason": str(gate.get("reason") or ""), "version": version},
            }
            if severity:
                entry["severity"] = severity
            out.append(entry)
    return out


# --- a namespace -------------------------------------------------------------------------------


def _key(result: Mapping[str, Any]) -> tuple[str, str, str]:
    uid = str(((result.get("resources") or [{}])[0]).get("uid") or "")
    return uid, str(result.get("policy")), str(result.get("rule"))


def _stamp(
    results: list[dict[str, Any]], before: Mapping[tuple[str, str, str], Mapping[str, Any]], now: datetime
) -> None:
    """Set each result's timestamp: the stored one while its result and message are unchanged."""
    seconds = int(now.timestamp())
    for r in results:
        old = before.get(_key(r))
        kept = old is not None and old.get("result") == r["result"] and old.get("message") == r["message"]
        r["timestamp"] = (
            dict(old["timestamp"])
            if kept and old and old.get("timestamp")
            else {
                "seconds": seconds,
                "nanos": 0,
            }
        )


def shard_name(index: int) -> str:
    return NAME if index == 0 else f"{NAME}-{index}"


def _shard_of(name: str, shards: int) -> int:
    return zlib.crc32(name.encode()) % shards


def _fits(sizes: Mapping[str, int], shards: int, budget: int) -> bool:
    totals = [0] * shards
    for name, size in sizes.items():
        totals[_shard_of(name, shards)] += size
    return max(totals) <= budget


def shard_count(sizes: Mapping[str, int], stored: int, budget: int = BUDGET) -> int:
    """How many reports the namespace's results need (a power of two): the fewest that fit the
    budget, but no fewer than `stored` (the reports there are) unless that fewer fit half of it."""

    def smallest(limit: int) -> int:
        n = 1
        while n < MAX_SHARDS and not _fits(sizes, n, limit):
            n *= 2
        return n

    fit = smallest(budget)
    if fit >= stored:
        return fit
    return max(fit, min(stored, smallest(budget // 2)))


def summary(results: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    counts = dict.fromkeys(RESULTS, 0)
    for r in results:
        counts[str(r["result"])] += 1
    return counts


def reports(
    namespace: str,
    models: Iterable[Model],
    stored: Mapping[str, Mapping[str, Any]],
    now: datetime,
    budget: int = BUDGET,
) -> dict[str, dict[str, Any]]:
    """The PolicyReports the namespace should have, by name (none when no model has a result).
    `stored` are the namespace's reports as they are now (timestamps are kept from them)."""
    before = {_key(r): r for report in stored.values() for r in report.get("results") or []}
    by_model: dict[str, list[dict[str, Any]]] = {}
    for model in models:
        results = model_results(model, now)
        if results:
            by_model[str(model.body["metadata"]["name"])] = results
    if not by_model:
        return {}
    sizes = {name: len(json.dumps(rs, separators=(",", ":"))) for name, rs in by_model.items()}
    shards = shard_count(sizes, _stored_shards(stored), budget)
    grouped: list[list[dict[str, Any]]] = [[] for _ in range(shards)]
    for name in sorted(by_model):
        grouped[_shard_of(name, shards)].extend(by_model[name])
    out = {}
    for index, results in enumerate(grouped):
        if not results:
            continue
        _stamp(results, before, now)
        name = shard_name(index)
        out[name] = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "PolicyReport",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
            "summary": summary(results),
            "results": results,
        }
    return out


def _stored_shards(stored: Mapping[str, Any]) -> int:
    """The number of shards the stored reports were split into (1 for `modelgate` alone)."""
    highest = 0
    for name in stored:
        suffix = name.removeprefix(f"{NAME}-")
        if suffix != name and suffix.isdigit():
            highest = max(highest, int(suffix))
    n = 1
    while n <= highest:
        n *= 2
    return n


def current(stored: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    """Whether the stored report already says what `wanted` says (then nothing is written)."""
    labels = (stored.get("metadata") or {}).get("labels") or {}
    return (
        stored.get("results") == wanted["results"]
        and stored.get("summary") == wanted["summary"]
        and all(labels.get(k) == v for k, v in LABELS.items())
    )


@dataclass(frozen=True)
class Writes:
    """What to write in one namespace: reports to apply (whole), report names to delete."""

    apply: tuple[dict[str, Any], ...]
    delete: tuple[str, ...]


def writes(stored: Mapping[str, Mapping[str, Any]], wanted: Mapping[str, dict[str, Any]]) -> Writes:
    """Only what differs: a report written as it is stored is not written again."""
    return Writes(
        apply=tuple(
            w for name, w in sorted(wanted.items()) if name not in stored or not current(stored[name], w)
        ),
        delete=tuple(sorted(name for name in stored if name not in wanted)),
    )
