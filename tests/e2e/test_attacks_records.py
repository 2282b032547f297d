"""Attacks on the record of an intervention (issue 10, point 4), performed as the deployer (alice,
group deployers) through the real API server, against a real Prometheus scraping the reference
exporter under simulated drift.

- Wipe the record: delete the rolled-back or quarantined ModelDeployment and apply it again. The
  ModelRecord the operator wrote holds the digest: the renewal gate applies as before.
- Delete or edit the ModelRecord: Forbidden.
- Retire a quarantined model to destroy the evidence: its pods are kept for the policy's
  quarantineRetention (owned by the ModelRecord), then deleted, and the record says so.

And one fault: a quarantine whose pass was lost between its record write and its status write is
recovered from the record.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, wait_until
from tests.support.operator import OperatorProcess
from tests.support.simulator import Simulator

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]

DEPLOYER = ("--as=alice", "--as-group=deployers")
AUDITOR = ("--as=dave", "--as-group=auditors")


def setup(kubectl: Kubectl, ns: str, names: dict[str, str], **policy_spec: Any) -> None:
    pol = m.policy(names["policy"], ns, min_accuracy=None)
    pol["spec"].update(policy_spec)
    kubectl.apply(pol)
    kubectl.apply(m.psi_template(names["template"]))


def manifest(ns: str, names: dict[str, str], version: str, on_drift: str) -> dict[str, Any]:
    return m.model_deployment(
        "fraud",
        ns,
        version,
        approvals=(f"{version}-ethics",),
        monitoring=m.psi_monitoring(names["template"], on_drift),
    )


def serve(kubectl: Kubectl, ns: str, names: dict[str, str], version: str, on_drift: str) -> None:
    m.approve(kubectl, m.approval(f"{version}-ethics", ns, "fraud", version))
    m.deploy(kubectl, manifest(ns, names, version, on_drift))


def status_of(kubectl: Kubectl, ns: str, what: str, pred: Any, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = kubectl.get("mdep", "fraud", ns)
        if obj is None:
            return None
        st = obj.get("status") or {}
        return obj if st.get("observedGeneration") == obj["metadata"]["generation"] and pred(obj) else None

    return wait_until(what, probe, timeout=timeout)


def known_good(obj: dict[str, Any]) -> list[str]:
    return [g["version"] for g in obj["status"].get("knownGood") or []]


def record_name(version: str) -> str:
    return f"fraud-{m.digest(f'fraud-{version}').removeprefix('sha256:')[:12]}"


def record(kubectl: Kubectl, ns: str, version: str) -> dict[str, Any] | None:
    found: dict[str, Any] | None = kubectl.get("modelrecord", record_name(version), ns)
    return found


def pods(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = kubectl.json(
        "get", "pods", "-n", ns, "-l", "modelgate.io/deployment=fraud"
    )["items"]
    return items


def all_quarantined(kubectl: Kubectl, ns: str) -> bool:
    found = pods(kubectl, ns)
    return bool(found) and all(
        p["metadata"]["labels"].get("modelgate.io/quarantined") == "true" for p in found
    )


def delete_and_reapply(kubectl: Kubectl, ns: str, names: dict[str, str], version: str, on_drift: str) -> None:
    """The attack: as the deployer, delete the ModelDeployment and apply the same one again."""
    kubectl("delete", "mdep", "fraud", "-n", ns, *DEPLOYER, "--wait=false")
    wait_until("the ModelDeployment to be gone", lambda: kubectl.get("mdep", "fraud", ns) is None, timeout=60)
    m.deploy(kubectl, manifest(ns, names, version, on_drift))


def assert_record_is_out_of_the_deployers_reach(kubectl: Kubectl, ns: str, name: str) -> None:
    for attempt in (
        ("delete", "modelrecord", name, "-n", ns),
        ("patch", "modelrecord", name, "-n", ns, "--type=merge", "-p", '{"spec":{"state":"Released"}}'),
        ("label", "modelrecord", name, "-n", ns, "lifted=true"),
    ):
        res = kubectl(*attempt, *DEPLOYER, check=False)
        assert res.returncode != 0 and "forbidden" in res.stderr.lower(), (attempt, res.stderr)
    assert kubectl("get", "modelrecord", name, "-n", ns, *AUDITOR, check=False).returncode == 0


def renewal_gate(obj: dict[str, Any]) -> dict[str, Any]:
    gate: dict[str, Any] = next(
        g for g in obj["status"]["gates"] if str(g["requirement"]).startswith("new approval after")
    )
    assert gate["satisfied"] is False and gate["reason"] == "ApprovalPredatesQuarantine"
    return gate


def test_deleting_and_reapplying_a_rolled_back_model_does_not_lift_the_rollback(
    kubectl: Kubectl, namespace: str, names: dict[str, str], sim: Simulator, operator: OperatorProcess
) -> None:
    setup(kubectl, namespace, names)
    serve(kubectl, namespace, names, "v1", "rollback")
    status_of(kubectl, namespace, "v1 to pass its checks", lambda o: "v1" in known_good(o))
    serve(kubectl, namespace, names, "v2", "rollback")
    status_of(kubectl, namespace, "v2 to pass its checks", lambda o: "v2" in known_good(o))
    sim.drift("fraud", True, version="v2")
    status_of(kubectl, namespace, "the rollback", lambda o: o["status"].get("phase") == "RolledBack")
    rec = wait_until("the ModelRecord of v2", lambda: record(kubectl, namespace, "v2"))
    assert rec["spec"]["state"] == "Withdrawn" and rec["spec"]["withdrawnReason"] == "DriftDetected"
    [entry] = rec["spec"]["entries"]
    assert entry["action"] == "RolledBack" and entry["modelDeployment"]["name"] == "fraud"
    assert_record_is_out_of_the_deployers_reach(kubectl, namespace, rec["metadata"]["name"])

    sim.drift("fraud", False, version="v2")
    delete_and_reapply(kubectl, namespace, names, "v2", "rollback")

    obj = status_of(
        kubectl,
        namespace,
        "the re-created ModelDeployment to be refused by the renewal gate",
        lambda o: any(
            g.get("reason") == "ApprovalPredatesQuarantine" for g in o["status"].get("gates") or []
        ),
    )
    assert obj["status"]["phase"] == "Blocked"
    assert "servingRevision" not in obj["status"]
    gate = renewal_gate(obj)
    assert gate["requirement"] == "new approval after rollback" and "created after" in gate["message"]
    assert kubectl.get("deployment", "fraud", namespace) is None
    assert record(kubectl, namespace, "v2") is not None


def test_retiring_a_quarantined_model_keeps_its_pods_for_the_retention_and_reapplying_lifts_nothing(
    kubectl: Kubectl, namespace: str, names: dict[str, str], sim: Simulator, operator: OperatorProcess
) -> None:
    setup(kubectl, namespace, names, quarantineRetention="40s")
    serve(kubectl, namespace, names, "v1", "quarantine")
    status_of(kubectl, namespace, "v1 to pass its checks", lambda o: "v1" in known_good(o))
    sim.drift("fraud", True, version="v1")
    status_of(kubectl, namespace, "the quarantine", lambda o: o["status"].get("phase") == "Quarantined")
    wait_until("the pods to be marked quarantined", lambda: all_quarantined(kubectl, namespace))
    kept_before = sorted(p["metadata"]["name"] for p in pods(kubectl, namespace))
    rec = wait_until("the ModelRecord of v1", lambda: record(kubectl, namespace, "v1"))
    assert rec["spec"]["withdrawnReason"] == "Quarantined"
    assert rec["spec"]["kept"]["retention"] == "40s"
    assert_record_is_out_of_the_deployers_reach(kubectl, namespace, rec["metadata"]["name"])

    # The deployer retires the model to get rid of the evidence, then applies it again.
    delete_and_reapply(kubectl, namespace, names, "v1", "quarantine")

    assert sorted(p["metadata"]["name"] for p in pods(kubectl, namespace)) == kept_before
    assert all_quarantined(kubectl, namespace)
    rec = wait_until(
        "the record to list the kept pods",
        lambda: (
            r
            if (r := record(kubectl, namespace, "v1")) and (r["spec"].get("kept") or {}).get("pods")
            else None
        ),
    )
    assert sorted(rec["spec"]["kept"]["pods"]) == kept_before
    [rs] = kubectl.json("get", "replicasets", "-n", namespace, "-l", "modelgate.io/retained=true")["items"]
    assert [o["kind"] for o in rs["metadata"]["ownerReferences"]] == ["ModelRecord"]
    assert rs["metadata"]["annotations"]["modelgate.io/retain-until"] == rec["spec"]["kept"]["retainUntil"]
    retired = [
        a
        for a in operator.audit_lines()
        if a["action"] == "Retired" and a["object"]["namespace"] == namespace
    ]
    assert sorted(retired[-1]["evidence"]["kept"]["pods"]) == kept_before

    obj = status_of(
        kubectl,
        namespace,
        "the re-created ModelDeployment to be refused by the renewal gate",
        lambda o: any(
            g.get("reason") == "ApprovalPredatesQuarantine" for g in o["status"].get("gates") or []
        ),
    )
    assert obj["status"]["phase"] == "Blocked" and kubectl.get("deployment", "fraud", namespace) is None
    assert renewal_gate(obj)["requirement"] == "new approval after quarantine"

    # At the end of the retention the kept pods go, and the record says so.
    wait_until("the kept pods to be deleted", lambda: not pods(kubectl, namespace), timeout=120)
    rec = wait_until(
        "the record to note the end of the retention",
        lambda: r if (r := record(kubectl, namespace, "v1")) and r["spec"]["kept"].get("deletedAt") else None,
    )
    assert rec["spec"]["entries"][-1]["action"] == "RetentionExpired"
    assert rec["spec"]["state"] == "Withdrawn"  # history stays; the digest is still withdrawn


def test_a_deployer_granted_record_writes_by_mistake_is_still_refused(
    kubectl: Kubectl, namespace: str
) -> None:
    """A careless RoleBinding (or a cluster role aggregated into `edit`) gives the deployer write
    access to ModelRecords: the shipped ValidatingAdmissionPolicy refuses the write anyway."""
    kubectl("create", "role", "careless", "-n", namespace, "--verb=*", "--resource=modelrecords.modelgate.io")
    kubectl("create", "rolebinding", "careless", "-n", namespace, "--role=careless", "--group=deployers")
    forged = {
        "apiVersion": m.API,
        "kind": "ModelRecord",
        "metadata": {"name": "fraud-000000000000", "namespace": namespace},
        "spec": {"model": {"name": "fraud", "digest": "sha256:" + "0" * 64}, "state": "Released"},
    }

    def refused() -> str | None:
        res = kubectl.apply(forged, as_user="alice", as_groups=m.DEPLOYERS, check=False)
        return res.stderr if res.returncode != 0 and "ValidatingAdmissionPolicy" in res.stderr else None

    message = wait_until("the VAP to refuse the forged record", refused, timeout=30)
    assert "written only by the modelgate operator" in message and "alice" in message
    assert kubectl.get("modelrecord", "fraud-000000000000", namespace) is None


def lost_quarantine(ns: str, model: dict[str, Any], decision: str, when: str) -> dict[str, Any]:
    """The ModelRecord a pass that quarantined v1 wrote before it was killed, short of its status."""
    entry = {
        "time": when,
        "action": "Quarantined",
        "reason": "DriftDetected",
        "message": "Quarantined fraud v1: traffic cut, pods kept: psi above its maximum (lost pass)",
        "modelDeployment": {"name": "fraud", "uid": model["metadata"]["uid"]},
        "decision": decision,
        "version": "v1",
    }
    return {
        "apiVersion": m.API,
        "kind": "ModelRecord",
        "metadata": {"name": record_name("v1"), "namespace": ns},
        "spec": {
            "model": {"name": "fraud", "digest": m.digest("fraud-v1")},
            "entries": [entry],
            "state": "Withdrawn",
            "withdrawnAt": when,
            "withdrawnReason": "Quarantined",
        },
    }


def test_a_quarantine_left_in_its_record_only_by_a_lost_pass_is_recovered_once(
    kubectl: Kubectl, namespace: str, names: dict[str, str], sim: Simulator, operator: OperatorProcess
) -> None:
    """The operator killed between the record write and the status write of a quarantine (the record
    is written here as that pass wrote it): the next pass enters it in history under its own id,
    posts its Event and audit line once, and cuts the traffic as the lost pass would have."""
    setup(kubectl, namespace, names)
    serve(kubectl, namespace, names, "v1", "quarantine")
    model = status_of(kubectl, namespace, "v1 to pass its checks", lambda o: "v1" in known_good(o))
    decision = hashlib.sha256(namespace.encode()).hexdigest()[:16]  # a decision id of its own
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    kubectl.apply(lost_quarantine(namespace, model, decision, when))

    obj = status_of(kubectl, namespace, "the quarantine", lambda o: o["status"].get("quarantinedAt") == when)
    assert obj["status"]["phase"] == "Quarantined"
    told = [h for h in obj["status"]["history"] if h.get("decision") == decision]
    assert [(h["action"], h["time"]) for h in told] == [("Quarantined", when)]
    assert obj["status"]["rejectedDigests"] == [
        {"digest": m.digest("fraud-v1"), "reason": "Quarantined", "time": when}
    ]
    event = wait_until("its Event", lambda: kubectl.get("event", f"fraud.{decision}", namespace))
    assert (event["reason"], event["type"]) == ("Quarantined", "Warning")
    audit = wait_until(
        "its audit line", lambda: [a for a in operator.audit_lines() if a.get("decision") == decision]
    )
    assert len(audit) == 1 and audit[0]["evidence"]["recoveredFrom"]["name"] == record_name("v1")
    wait_until("the pods to be marked quarantined", lambda: all_quarantined(kubectl, namespace))
    service = kubectl.get("service", "fraud", namespace)
    assert service is not None and service["spec"]["selector"]["modelgate.io/quarantined"] == "false"
    rec = record(kubectl, namespace, "v1")
    assert rec is not None and [e["decision"] for e in rec["spec"]["entries"]] == [decision]
