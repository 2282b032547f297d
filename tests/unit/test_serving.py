"""The serving objects and their normal form (decide/serving.py), and how owned objects are found.

The normal form is checked against what a real kube-apiserver v1.37 returned for our desired objects
(tests/unit/data/, captured with `kubectl create --dry-run=server -o json`): every server default
must vanish, every field someone else adds must stay visible.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelgate.decide import serving as s
from modelgate.handlers.indexes import _owned
from modelgate.observe.snapshot import snapshot
from tests.unit.factories import UID, body_of, model

DATA = Path(__file__).parent / "data"
OWNER = s.Owner("modelgate.io/v1alpha1", "ModelDeployment", "fraud", "fraud-prod", UID)
REV = s.Revision("fraud", "v1", "s3://m/fraud/v1", "sha256:" + "a" * 64, "registry.example/serve:1", "f" * 32)
SPEC = s.ServingSpec(2, 8080, {"limits": {"memory": "1Gi", "cpu": "0.5"}}, [{"name": "X", "value": ""}])


def load(name: str) -> dict[str, Any]:
    return dict(json.loads((DATA / name).read_text()))


# --- manifests -------------------------------------------------------------------------------------


def test_pods_carry_the_revision_id_and_the_service_selects_it() -> None:
    dep = s.desired_deployment(OWNER, REV, SPEC)
    svc = s.desired_service(OWNER, REV, SPEC)

    assert dep["spec"]["template"]["metadata"]["labels"][s.LABEL_REVISION] == "f" * 32
    assert svc["spec"]["selector"] == {s.LABEL_DEPLOYMENT: "fraud", s.LABEL_REVISION: "f" * 32}
    assert dep["spec"]["selector"] == {"matchLabels": {s.LABEL_DEPLOYMENT: "fraud"}}  # immutable, stable


def test_a_revision_without_id_selects_by_model_only() -> None:
    rev = s.Revision("fraud", "v1", "s3://m", "sha256:" + "a" * 64, "img:1")

    assert s.desired_service(OWNER, rev, SPEC)["spec"]["selector"] == {s.LABEL_DEPLOYMENT: "fraud"}
    assert (
        s.LABEL_REVISION
        not in s.desired_deployment(OWNER, rev, SPEC)["spec"]["template"]["metadata"]["labels"]
    )


def test_quarantined_service_selects_no_pod() -> None:
    selector = s.desired_service(OWNER, REV, SPEC, quarantined=True)["spec"]["selector"]

    assert selector[s.LABEL_QUARANTINED] == "false"
    assert selector[s.LABEL_REVISION] == "f" * 32


def test_quarantine_network_policy_denies_all_ingress_to_the_quarantined_pods_of_the_model() -> None:
    np = s.quarantine_network_policy(OWNER)

    assert np["metadata"]["name"] == "fraud-quarantine"
    assert np["metadata"]["namespace"] == "fraud-prod"
    assert np["spec"] == {
        "podSelector": {"matchLabels": {s.LABEL_DEPLOYMENT: "fraud", s.LABEL_QUARANTINED: "true"}},
        "policyTypes": ["Ingress"],
    }
    ref = np["metadata"]["ownerReferences"][0]
    assert (ref["kind"], ref["uid"], ref["controller"]) == ("ModelDeployment", UID, True)


# --- the normal form -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["deployment", "service"])
def test_what_the_api_server_returns_for_our_object_normalises_to_what_we_want(kind: str) -> None:
    want, got = load(f"desired-{kind}.json"), load(f"apiserver-v1.37-{kind}.json")

    assert got != want
    assert s.normalised(got) == s.normalised(want)
    assert s.differences(s.normalised(got), s.normalised(want)) == []


Edit = Callable[[dict[str, Any]], None]
SERVER_DEFAULTS: list[tuple[str, Edit]] = [
    ("restartPolicy", lambda d: d["spec"]["template"]["spec"].update(restartPolicy="Always")),
    ("dnsPolicy", lambda d: d["spec"]["template"]["spec"].update(dnsPolicy="ClusterFirst")),
    ("schedulerName", lambda d: d["spec"]["template"]["spec"].update(schedulerName="default-scheduler")),
    ("grace period", lambda d: d["spec"]["template"]["spec"].update(terminationGracePeriodSeconds=30)),
    ("securityContext {}", lambda d: d["spec"]["template"]["spec"].update(securityContext={})),
    (
        "terminationMessagePath",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
            terminationMessagePath="/dev/termination-log"
        ),
    ),
    (
        "terminationMessagePolicy",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(terminationMessagePolicy="File"),
    ),
    (
        "imagePullPolicy of a tagged image",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicy="IfNotPresent"),
    ),
    (
        "port protocol",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["ports"][0].pop("protocol"),
    ),
    (
        "0.5 CPU as 500m",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(cpu="500m"),
    ),
    (
        "1Gi as bytes",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"].update(
            memory="1073741824"
        ),
    ),
    (
        "empty env value dropped",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"][-1].pop("value"),
    ),
    (
        "template creationTimestamp null",
        lambda d: d["spec"]["template"]["metadata"].update(creationTimestamp=None),
    ),
    ("revisionHistoryLimit", lambda d: d["spec"].update(revisionHistoryLimit=10)),
    ("progressDeadlineSeconds", lambda d: d["spec"].update(progressDeadlineSeconds=600)),
    (
        "strategy",
        lambda d: d["spec"].update(
            strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
        ),
    ),
    ("Deployment-level annotations of others", lambda d: d["metadata"]["annotations"].update({"x/y": "1"})),
]
FOREIGN: list[tuple[str, Edit, str]] = [
    (
        "command",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(command=["sh"]),
        "command",
    ),
    ("args", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(args=["--evil"]), "args"),
    (
        "envFrom",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
            envFrom=[{"secretRef": {"name": "s"}}]
        ),
        "envFrom",
    ),
    (
        "env valueFrom",
        lambda d: d["spec"]["template"]["spec"]["containers"][0]["env"].append(
            {"name": "K", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}
        ),
        "env",
    ),
    (
        "initContainers",
        lambda d: d["spec"]["template"]["spec"].update(initContainers=[{"name": "i", "image": "evil:1"}]),
        "initContainers",
    ),
    (
        "volumes",
        lambda d: d["spec"]["template"]["spec"].update(volumes=[{"name": "v", "hostPath": {"path": "/"}}]),
        "volumes",
    ),
    (
        "volumeMounts",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(
            volumeMounts=[{"name": "v", "mountPath": "/models"}]
        ),
        "volumeMounts",
    ),
    (
        "serviceAccountName",
        lambda d: d["spec"]["template"]["spec"].update(serviceAccountName="admin"),
        "serviceAccountName",
    ),
    ("hostNetwork", lambda d: d["spec"]["template"]["spec"].update(hostNetwork=True), "hostNetwork"),
    (
        "nodeSelector",
        lambda d: d["spec"]["template"]["spec"].update(nodeSelector={"gpu": "x"}),
        "nodeSelector",
    ),
    (
        "privileged",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(securityContext={"privileged": True}),
        "securityContext",
    ),
    (
        "sidecar",
        lambda d: d["spec"]["template"]["spec"]["containers"].append({"name": "side", "image": "evil:1"}),
        "containers",
    ),
    ("image", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(image="evil:1"), "image"),
    (
        "imagePullPolicy Never",
        lambda d: d["spec"]["template"]["spec"]["containers"][0].update(imagePullPolicy="Never"),
        "imagePullPolicy",
    ),
    ("restartPolicy", lambda d: d["spec"]["template"]["spec"].update(restartPolicy="Never"), "restartPolicy"),
    (
        "template annotation",
        lambda d: d["spec"]["template"]["metadata"]["annotations"].update(
            {"kubectl.kubernetes.io/restartedAt": "x"}
        ),
        "annotations",
    ),
    (
        "pod label",
        lambda d: d["spec"]["template"]["metadata"]["labels"].update({"team": "x"}),
        "labels",
    ),
    ("paused", lambda d: d["spec"].update(paused=True), "paused"),
    ("replicas", lambda d: d["spec"].update(replicas=9), "replicas"),
    ("strategy", lambda d: d["spec"].update(strategy={"type": "Recreate"}), "strategy"),
    ("minReadySeconds", lambda d: d["spec"].update(minReadySeconds=600), "minReadySeconds"),
]


@pytest.mark.parametrize(("what", "edit"), SERVER_DEFAULTS, ids=[w for w, _ in SERVER_DEFAULTS])
def test_a_server_default_is_no_difference(what: str, edit: Edit) -> None:
    want = load("desired-deployment.json")
    got = copy.deepcopy(want)
    edit(got)

    assert got != want, f"the edit for {what} changed nothing: this case would pass whatever normalised does"
    assert s.normalised(got) == s.normalised(want), what


@pytest.mark.parametrize(("what", "edit", "field"), FOREIGN, ids=[w for w, _, _ in FOREIGN])
def test_a_foreign_field_is_a_difference_named_by_its_path(what: str, edit: Edit, field: str) -> None:
    want = load("desired-deployment.json")
    got = load("apiserver-v1.37-deployment.json")  # defaults and the edit together
    edit(got)

    found = s.differences(s.normalised(got), s.normalised(want))

    assert found, what
    assert any(field in path for path in found), found


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda v: v["spec"].update(type="NodePort"), "type"),
        (lambda v: v["spec"].update(externalIPs=["1.2.3.4"]), "externalIPs"),
        (lambda v: v["spec"]["selector"].pop(s.LABEL_REVISION), "selector"),
        (lambda v: v["spec"].update(sessionAffinity="ClientIP"), "sessionAffinity"),
    ],
)
def test_a_foreign_service_field_is_a_difference(edit: Edit, field: str) -> None:
    want = load("desired-service.json")
    got = load("apiserver-v1.37-service.json")
    edit(got)

    assert any(field in p for p in s.differences(s.normalised(got), s.normalised(want)))


@pytest.mark.parametrize(
    ("image", "policy"),
    [
        ("reg/serve:1", "IfNotPresent"),
        ("reg/serve", "Always"),
        ("reg/serve:latest", "Always"),
        ("reg:5000/serve", "Always"),
        ("reg:5000/serve:2", "IfNotPresent"),
        ("reg/serve@sha256:" + "a" * 64, "IfNotPresent"),
    ],
)
def test_default_pull_policy_follows_the_api_server(image: str, policy: str) -> None:
    assert s.default_pull_policy(image) == policy


def test_essentials_keep_the_whole_template_and_drop_what_nobody_reads() -> None:
    got = load("apiserver-v1.37-deployment.json")
    got["metadata"]["managedFields"] = [{"manager": "kubectl"}]
    got["metadata"]["annotations"] = {"deployment.kubernetes.io/revision": "1", s.ANNOTATION_DIGEST: "d"}
    got["status"] = {"readyReplicas": 2, "conditions": [{"type": "Available"}]}

    kept = s.essentials(got)

    assert kept["spec"] == got["spec"]
    assert kept["metadata"]["annotations"] == {s.ANNOTATION_DIGEST: "d"}
    assert "managedFields" not in kept["metadata"]
    assert kept["status"] == {"readyReplicas": 2}
    assert s.normalised(kept) == s.normalised(got)
    assert len(json.dumps(kept)) < 2500  # what the operator keeps per owned Deployment


# --- owned objects by owner uid --------------------------------------------------------------------


def _owned_by(uid: str | None, kind: str = "Deployment") -> dict[str, Any]:
    obj = (
        load("apiserver-v1.37-deployment.json")
        if kind == "Deployment"
        else load("apiserver-v1.37-service.json")
    )
    obj["metadata"]["namespace"] = "fraud-prod"
    if uid:
        obj["metadata"]["ownerReferences"] = [
            {
                "apiVersion": "modelgate.io/v1alpha1",
                "kind": "ModelDeployment",
                "name": "fraud",
                "uid": uid,
                "controller": True,
            }
        ]
    return obj


@pytest.mark.parametrize(
    ("refs", "uid"),
    [
        ([], None),
        ([{"kind": "ModelDeployment", "uid": "u1", "controller": False}], None),
        ([{"kind": "ReplicaSet", "uid": "u1", "controller": True}], None),
        (
            [
                {"kind": "ReplicaSet", "uid": "u0"},
                {"kind": "ModelDeployment", "uid": "u1", "controller": True},
            ],
            "u1",
        ),
    ],
)
def test_controller_uid_is_the_controlling_model_deployments(
    refs: list[dict[str, Any]], uid: str | None
) -> None:
    assert s.controller_uid({"metadata": {"ownerReferences": refs}}) == uid


def _snapshot(deployments: dict[Any, Any], services: dict[Any, Any]) -> Any:
    md = model()
    return snapshot(
        body_of(md),
        approvals={},
        evaluations={},
        approvals_by_digest={},
        evaluations_by_digest={},
        policies={},
        namespaces={},
        owned_deployments=deployments,
        owned_services=services,
        allow_no_policy=False,
    )


def test_snapshot_finds_owned_objects_by_the_model_deployments_uid() -> None:
    dep, svc = _owned_by(UID), _owned_by(UID, "Service")
    ns = model().namespace

    obs = _snapshot({(ns, UID, "Deployment"): [dep]}, {(ns, UID, "Service"): [svc]})

    assert obs.owned_deployment is dep and obs.owned_service is svc


def test_objects_of_another_uid_are_not_the_models_even_with_its_name_and_labels() -> None:
    ns = model().namespace
    other = _owned_by("another-uid")

    obs = _snapshot({(ns, "another-uid", "Deployment"): [other]}, {})

    assert obs.owned_deployment is None and obs.owned_service is None


@pytest.mark.parametrize(
    ("uid", "keys"),
    [
        (UID, [("fraud-prod", UID, "Deployment")]),
        (None, []),
    ],
    ids=["controlled by a ModelDeployment", "labelled like ours, controlled by none"],
)
def test_the_owned_index_keys_on_the_controlling_uid_only(uid: str | None, keys: list[Any]) -> None:
    body = _owned_by(uid)

    assert list(_owned("fraud-prod", body)) == keys  # type: ignore[arg-type]
