"""Attacks on what serves, performed as the deployer through the real API server (issue 10, point 6).

The deployer (alice, group `deployers`) holds modelgate's deployer role and, as every team does
through Kubernetes' built-in `edit` role, may create and change pods, ReplicaSets, Deployments and
NetworkPolicies in their namespace. Each attack must fail with a clear refusal or be reverted with a
TamperReverted event: the ValidatingAdmissionPolicy of
charts/modelgate/templates/admission-serving-labels.yaml refuses objects with modelgate's serving
labels from anyone but the operator and the Deployment's controllers, the Service selects the
revision id, and the operator compares the whole pod template.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.support import manifests as m
from tests.support.kube import Kubectl, wait_until
from tests.support.operator import OperatorProcess
from tests.support.simulator import Simulator

pytestmark = pytest.mark.integration
AS_DEPLOYER = ("--as", "alice", "--as-group", "deployers")
REFUSED = "modelgate-serving-objects"


@pytest.fixture
def team(kubectl: Kubectl, namespace: str) -> str:
    """The deployer's team may edit its namespace, as Kubernetes' `edit` role allows."""
    kubectl("create", "rolebinding", "team-edit", "-n", namespace, "--clusterrole=edit", "--group=deployers")
    return namespace


def phase(kubectl: Kubectl, ns: str) -> str | None:
    obj = kubectl.get("mdep", "fraud", ns) or {}
    st = obj.get("status") or {}
    return st.get("phase") if st.get("observedGeneration") == obj["metadata"]["generation"] else None


def admit(kubectl: Kubectl, ns: str, policy: str, **kwargs: Any) -> None:
    kubectl.apply(m.policy(policy, ns))
    m.approve(kubectl, m.approval("v1-ethics", ns, "fraud"))
    m.submit(kubectl, m.evaluation("v1-eval", ns, "fraud"))
    m.deploy(
        kubectl, m.model_deployment("fraud", ns, approvals=("v1-ethics",), evaluations=("v1-eval",), **kwargs)
    )


def serving_pods(kubectl: Kubectl, ns: str) -> list[dict[str, Any]]:
    return list(kubectl.json("get", "pods", "-n", ns, "-l", "modelgate.io/deployment=fraud")["items"])


def endpoint_ips(kubectl: Kubectl, ns: str) -> set[str]:
    slices = kubectl.json("get", "endpointslices", "-n", ns, "-l", "kubernetes.io/service-name=fraud")[
        "items"
    ]
    return {a for s in slices for e in s.get("endpoints") or [] for a in e.get("addresses") or []}


def refused(res: Any) -> str:
    assert res.returncode != 0, f"the API server accepted it: {res.stdout}"
    assert REFUSED in res.stderr, res.stderr
    return str(res.stderr)


def lookalike(ns: str, labels: dict[str, str], name: str = "lookalike") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": ns, "labels": labels},
        "spec": {"containers": [{"name": "model", "image": "registry.example/evil:1"}]},
    }


def test_a_lookalike_pod_is_refused_and_without_the_revision_label_is_no_endpoint(
    kubectl: Kubectl, team: str, policy_name: str, operator: OperatorProcess
) -> None:
    ns = team
    admit(kubectl, ns, policy_name)
    wait_until("the model to serve", lambda: phase(kubectl, ns) == "Serving")
    labels = dict(serving_pods(kubectl, ns)[0]["metadata"]["labels"])
    labels.pop("pod-template-hash", None)

    res = kubectl("create", "-f", "-", *AS_DEPLOYER, input=json.dumps(lookalike(ns, labels)), check=False)
    message = refused(res)
    assert "alice may not create Pod" in message
    # Nor may the deployer put the label on a pod of their own, or take it off a serving pod.
    kubectl("create", "-f", "-", *AS_DEPLOYER, input=json.dumps(lookalike(ns, {"app": "mine"}, "mine")))
    refused(
        kubectl("label", "pod", "mine", "-n", ns, "modelgate.io/deployment=fraud", *AS_DEPLOYER, check=False)
    )
    victim = serving_pods(kubectl, ns)[0]["metadata"]["name"]
    refused(kubectl("label", "pod", victim, "-n", ns, "modelgate.io/deployment-", *AS_DEPLOYER, check=False))

    # Defence in depth: a cluster admin's pod with the model's labels but not the revision id's.
    svc = kubectl.get("service", "fraud", ns)
    assert svc is not None
    assert svc["spec"]["selector"].get("modelgate.io/revision"), svc["spec"]["selector"]
    admin_pod = lookalike(ns, {k: v for k, v in labels.items() if k != "modelgate.io/revision"}, "admin-pod")
    kubectl("create", "-f", "-", input=json.dumps(admin_pod))
    ip = wait_until(
        "the admin's pod to be ready with an IP",
        lambda: (kubectl.get("pod", "admin-pod", ns) or {}).get("status", {}).get("podIP"),
    )
    wait_until("the serving pods to be endpoints", lambda: len(endpoint_ips(kubectl, ns)) == 2)
    assert ip not in endpoint_ips(kubectl, ns)


def test_replicasets_deployments_services_and_pods_with_our_labels_are_refused(
    kubectl: Kubectl, team: str, operator: OperatorProcess
) -> None:
    ns = team
    labels = {"modelgate.io/deployment": "fraud", "modelgate.io/model": "fraud"}
    template = {"metadata": {"labels": labels}, "spec": lookalike(ns, labels)["spec"]}
    for kind, api in (("ReplicaSet", "apps/v1"), ("Deployment", "apps/v1")):
        obj = {
            "apiVersion": api,
            "kind": kind,
            "metadata": {"name": f"shadow-{kind.lower()}", "namespace": ns},
            "spec": {"replicas": 1, "selector": {"matchLabels": labels}, "template": template},
        }
        message = refused(kubectl("create", "-f", "-", *AS_DEPLOYER, input=json.dumps(obj), check=False))
        assert f"alice may not create {kind}" in message
    # A pod posing as the model to the metrics pipeline, with the model's label alone.
    only_model = lookalike(ns, {"modelgate.io/model": "fraud"}, "metrics-spoof")
    refused(kubectl("create", "-f", "-", *AS_DEPLOYER, input=json.dumps(only_model), check=False))
    # A Service of the deployer's that would route to the model's (possibly quarantined) pods.
    side_door = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "side-door", "namespace": ns},
        "spec": {
            "selector": {"modelgate.io/deployment": "fraud"},
            "ports": [{"port": 80, "targetPort": 8080}],
        },
    }
    message = refused(kubectl("create", "-f", "-", *AS_DEPLOYER, input=json.dumps(side_door), check=False))
    assert "alice may not create Service" in message
    assert kubectl.json("get", "replicasets,deployments,services,pods", "-n", ns)["items"] == []


EDITS = {
    "command": {
        "op": "add",
        "path": "/spec/template/spec/containers/0/command",
        "value": ["sh", "-c", "evil"],
    },
    "initContainers": {
        "op": "add",
        "path": "/spec/template/spec/initContainers",
        "value": [{"name": "fetch", "image": "registry.example/evil:1"}],
    },
    "volumes": {"op": "add", "path": "/spec/template/spec/volumes", "value": [{"name": "v", "emptyDir": {}}]},
    "serviceAccountName": {"op": "add", "path": "/spec/template/spec/serviceAccountName", "value": "default"},
}


def test_edits_to_the_owned_deployment_are_refused_for_the_deployer_and_reverted_for_an_admin(
    kubectl: Kubectl, team: str, policy_name: str, operator: OperatorProcess
) -> None:
    ns = team
    admit(kubectl, ns, policy_name)
    wait_until("the model to serve", lambda: phase(kubectl, ns) == "Serving")
    for field, op in EDITS.items():
        res = kubectl(
            "patch",
            "deployment",
            "fraud",
            "-n",
            ns,
            "--type=json",
            "-p",
            json.dumps([op]),
            *AS_DEPLOYER,
            check=False,
        )
        assert "alice may not update Deployment" in refused(res), field

    # A cluster admin is past the admission policy: the operator reverts the edit.
    kubectl("patch", "deployment", "fraud", "-n", ns, "--type=json", "-p", json.dumps(list(EDITS.values())))

    def reverted() -> bool:
        dep = kubectl.get("deployment", "fraud", ns) or {}
        pod = dep["spec"]["template"]["spec"]
        return not any(k in pod for k in ("initContainers", "volumes", "serviceAccountName")) and (
            "command" not in pod["containers"][0]
        )

    wait_until("the edit to be reverted", reverted)
    events = kubectl.json("get", "events", "-n", ns, "--field-selector", "reason=TamperReverted")["items"]
    assert events, "no TamperReverted event"
    message = " ".join(e["message"] for e in events)
    for field in EDITS:
        assert field in message, message
    wait_until("the model to serve again", lambda: phase(kubectl, ns) == "Serving")


def test_a_deployment_named_like_the_model_is_not_adopted_nor_overwritten(
    kubectl: Kubectl, team: str, policy_name: str, operator: OperatorProcess
) -> None:
    ns = team
    squatter = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "fraud", "namespace": ns},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "squat"}},
            "template": {"metadata": {"labels": {"app": "squat"}}, "spec": lookalike(ns, {})["spec"]},
        },
    }
    kubectl("create", "-f", "-", *AS_DEPLOYER, input=json.dumps(squatter))
    admit(kubectl, ns, policy_name)

    def not_owned() -> list[dict[str, Any]]:
        items = kubectl.json("get", "events", "-n", ns, "--field-selector", "reason=ServingObjectNotOwned")[
            "items"
        ]
        return [e for e in items if e["involvedObject"]["kind"] == "ModelDeployment"]

    events = wait_until("the conflict to be reported", not_owned)
    assert "Deployment" in events[0]["message"] and "will not adopt or overwrite" in events[0]["message"]
    dep = kubectl.get("deployment", "fraud", ns)
    assert dep is not None
    assert not dep["metadata"].get("ownerReferences")
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example/evil:1"
    assert phase(kubectl, ns) != "Serving"

    # Once the squatter is gone, the model gets its own Deployment.
    kubectl("delete", "deployment", "fraud", "-n", ns)
    wait_until("the model to serve", lambda: phase(kubectl, ns) == "Serving", timeout=150)
    dep, md = kubectl.get("deployment", "fraud", ns), kubectl.get("mdep", "fraud", ns)
    assert dep is not None and md is not None
    owner = dep["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["uid"]) == ("ModelDeployment", md["metadata"]["uid"])


@pytest.mark.prometheus
def quarantined_pods(kubectl: Kubectl, ns: str) -> list[str]:
    pods = kubectl.json("get", "pods", "-n", ns, "-l", "modelgate.io/quarantined=true")["items"]
    return [p["metadata"]["name"] for p in pods]


def test_a_quarantined_model_gets_a_network_policy_the_deployer_cannot_remove(
    kubectl: Kubectl, team: str, policy_name: str, sim: Simulator, operator: OperatorProcess
) -> None:
    ns = team
    template = f"psi-{uuid.uuid4().hex[:8]}"
    kubectl.apply(m.psi_template(template))
    try:
        admit(kubectl, ns, policy_name, monitoring=m.psi_monitoring(template, "quarantine"))
        wait_until("the model to serve", lambda: phase(kubectl, ns) == "Serving")
        assert kubectl.get("networkpolicy", "fraud-quarantine", ns) is None

        sim.drift("fraud", True, version="v1")
        wait_until("the quarantine", lambda: phase(kubectl, ns) == "Quarantined", timeout=120)
        np = wait_until("the NetworkPolicy", lambda: kubectl.get("networkpolicy", "fraud-quarantine", ns))
        assert np["spec"]["podSelector"]["matchLabels"] == {
            "modelgate.io/deployment": "fraud",
            "modelgate.io/quarantined": "true",
        }
        assert np["spec"]["policyTypes"] == ["Ingress"] and not np["spec"].get("ingress")

        res = kubectl("delete", "networkpolicy", "fraud-quarantine", "-n", ns, *AS_DEPLOYER, check=False)
        assert "alice may not delete NetworkPolicy" in refused(res)
        assert kubectl.get("networkpolicy", "fraud-quarantine", ns) is not None

        # A pod that dies is replaced by its ReplicaSet without the mark: the policy must reach the
        # replacement too, or it would take traffic by its IP.
        (first, *_) = quarantined_pods(kubectl, ns)
        kubectl("delete", "pod", first, "-n", ns, "--wait=false")

        def replaced_and_marked() -> bool:
            pods = kubectl.json("get", "pods", "-n", ns, "-l", "modelgate.io/deployment=fraud")["items"]
            live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
            return (
                bool(live)
                and first not in {p["metadata"]["name"] for p in live}
                and all(p["metadata"]["labels"].get("modelgate.io/quarantined") == "true" for p in live)
            )

        wait_until("the replacement pod to be marked quarantined", replaced_and_marked, timeout=120)
    finally:
        kubectl("delete", "metrictemplate", template, "--ignore-not-found", "--wait=false")
