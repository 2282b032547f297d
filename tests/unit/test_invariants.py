"""The pure part of the fault suite's invariants (tests/support/invariants.py): each invariant
finds the violation it exists for, and a healthy world has none."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

from tests.support.invariants import Expect, World, snapshot_of, violations_of

NS = "ns"
DIGEST = "sha256:" + "a" * 64
NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)
UID = "md-uid"


def meta(name: str, uid: str = "", **extra: Any) -> dict[str, Any]:
    return {"name": name, "namespace": NS, "uid": uid or f"{name}-uid", **extra}


def model(**status: Any) -> dict[str, Any]:
    return {
        "metadata": meta("fraud", UID, generation=1, finalizers=["modelgate.io/finalizer"]),
        "spec": {"model": {"name": "fraud", "version": "v1", "digest": DIGEST}},
        "status": {
            "observedGeneration": 1,
            "phase": "Serving",
            "conditions": [{"type": "Ready", "status": "True"}],
            "servingRevision": {"version": "v1", "digest": DIGEST},
            "history": [{"time": "t1", "action": "Admitted", "message": "Admitted v1", "decision": "0" * 16}],
            **status,
        },
    }


def owned(kind: str, **spec: Any) -> dict[str, Any]:
    owner = {"kind": "ModelDeployment", "uid": UID, "controller": True}
    return {"kind": kind, "metadata": meta("fraud", ownerReferences=[owner]), "spec": spec, "status": {}}


DEPLOYMENT = owned(
    "Deployment",
    replicas=2,
    template={"spec": {"containers": [{"env": [{"name": "MODEL_DIGEST", "value": DIGEST}]}]}},
)
DEPLOYMENT["status"] = {"readyReplicas": 2}
APPROVAL = {
    "metadata": meta("eb", creationTimestamp="2026-12-05T11:00:00Z"),
    "spec": {"model": {"name": "fraud", "digest": DIGEST}, "role": "ethics-board", "decision": "approved"},
}
POLICY = {
    "metadata": {"name": "p"},
    "spec": {
        "namespaceSelector": {"matchLabels": {"t": NS}},
        "approvals": [{"role": "ethics-board", "count": 1}],
    },
}
EVENT = {
    "metadata": meta(f"fraud.{'0' * 16}"),
    "involvedObject": {"uid": UID},
    "reason": "Admitted",
    "message": "Admitted v1",
}
WORLD = World(
    namespace_labels={"t": NS},
    policies=[POLICY],
    models=[model()],
    approvals=[APPROVAL],
    evaluations=[],
    records=[],
    deployments=[DEPLOYMENT],
    services=[owned("Service")],
    replica_sets=[],
    network_policies=[],
    events=[EVENT],
    now=NOW,
)
SERVING = [Expect("fraud", "v1", "Serving")]


def test_a_healthy_world_has_no_violation() -> None:
    assert violations_of(WORLD, SERVING, snapshot_of(WORLD)) == []


def test_serving_without_the_required_approval_is_a_violation() -> None:
    found = violations_of(replace(WORLD, approvals=[]), SERVING, None)

    assert found == ["Deployment fraud serves " + DIGEST + ": policy p requires 1 ethics-board approval(s)"]


def test_serving_a_withdrawn_digest_without_a_newer_approval_is_a_violation() -> None:
    rejected = [{"digest": DIGEST, "reason": "DriftDetected", "time": "2026-12-05T11:30:00Z"}]
    world = replace(WORLD, models=[model(rejectedDigests=rejected)])

    assert any("withdrawn at 2026-12-05T11:30:00Z" in v for v in violations_of(world, SERVING, None))


def test_a_model_left_down_is_a_violation() -> None:
    down = replace(WORLD, deployments=[{**DEPLOYMENT, "status": {"readyReplicas": 0}}])

    assert violations_of(down, SERVING, None) == ["fraud: v1 is down (0/2 ready, Service: True)"]


def test_an_event_posted_twice_is_a_violation_whatever_its_names() -> None:
    again = {**EVENT, "metadata": meta("fraud.x7k2p")}  # generateName: not named after the decision
    legacy = {**model()["status"]["history"][0]}
    del legacy["decision"]
    world = replace(
        WORLD, models=[model(history=[legacy])], events=[{**EVENT, "metadata": meta("fraud.a")}, again]
    )

    assert violations_of(world, SERVING, None) == [
        "fraud: 2 Event(s) for 1 history entr(y/ies) of ('Admitted', 'Admitted v1')"
    ]


def test_a_digest_withdrawn_twice_without_a_release_is_recorded_twice() -> None:
    entry = {"action": "RolledBack", "modelDeployment": {"name": "fraud", "uid": UID}}
    record = {
        "metadata": meta("fraud-aaaa"),
        "spec": {"entries": [{**entry, "time": "t1"}, {**entry, "time": "t2"}]},
    }

    found = violations_of(replace(WORLD, records=[record]), SERVING, None)

    assert found == [
        "ModelRecord fraud-aaaa: RolledBack at t2 repeats RolledBack at t1 for ModelDeployment md-uid"
    ]


def test_lost_evidence_and_history_are_violations() -> None:
    before = snapshot_of(WORLD)
    after = replace(WORLD, approvals=[], models=[model(history=[])])

    found = violations_of(after, [], before)

    assert "ModelApproval eb (uid eb-uid) is lost" in found
    assert f"history entry {'0' * 16} of ModelDeployment uid {UID} is lost" in found


def test_an_intervention_in_a_record_but_not_in_history_is_lost_evidence() -> None:
    entry = {"action": "Quarantined", "modelDeployment": {"name": "fraud", "uid": UID}}
    record = {
        "metadata": meta("fraud-aaaa"),
        "spec": {
            "entries": [
                {**entry, "time": "t1", "decision": "0" * 16},  # the model's history holds this one
                {**entry, "time": "t2", "action": "Released"},
                {**entry, "time": "t3", "decision": "1" * 16},
                {**entry, "time": "t4", "decision": "2" * 16, "modelDeployment": {"uid": "gone"}},
            ]
        },
    }

    found = violations_of(replace(WORLD, records=[record]), SERVING, None)

    lost = "1" * 16
    assert found == [
        f"ModelRecord fraud-aaaa: Quarantined {lost} of ModelDeployment fraud is not in its status.history"
    ]


def test_missing_finalizer_and_stale_status_are_violations() -> None:
    md = model()
    md["metadata"] = {**md["metadata"], "finalizers": [], "generation": 2}

    found = violations_of(replace(WORLD, models=[md]), [], None)

    assert found == [
        "ModelDeployment fraud lacks the finalizer modelgate.io/finalizer",
        "fraud: observedGeneration 1 != generation 2",
    ]
