"""charts/modelgate on a control plane of its own (tests/support/clusters.py, "chart": the chart's
webhook configurations would clash with the session operator's).

`kubectl apply --dry-run=server` of the default render and of the everything-enabled one (minimal
CRDs stand in for cert-manager's Certificate/Issuer and the Prometheus Operator's
ServiceMonitor/PrometheusRule, so the API server checks every document); then, in order, `helm
install` with the webhooks pointed at an operator run out of cluster; the least-privilege proof: that
operator runs as the chart's ServiceAccount with a TokenRequest token through a full admission
(blocked, approved and serving, revoked and suspended), and `kubectl auth can-i` with the same token
shows what it may and may not do (the matrix is written to .cache/test-logs/chart-can-i-matrix.md);
`helm upgrade` (nothing re-admitted, the webhooks keep their CA bundle); `helm uninstall` (CRDs and
custom resources stay); `kubectl apply -f deploy/modelgate.yaml` alone.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml
from hack.launch import MANIFEST, PROBE_ARGS, client_ca_args, probe_answered, probe_input

from tests.support import manifests as m
from tests.support.clusters import own_cluster
from tests.support.helm import CHART, EVERYTHING, NS, run_helm, template
from tests.support.kube import Cluster, Kubectl, condition, wait_until
from tests.support.operator import free_port, run_operator

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
SA = f"system:serviceaccount:{NS}:modelgate-operator"
LOGS = ROOT / ".cache" / "test-logs"
MODELGATE_KINDS = (
    "modeldeployments",
    "modelapprovals",
    "modelevaluations",
    "governancepolicies",
    "modelrecords",
)


def stub_crd(group: str, kind: str, plural: str) -> dict[str, Any]:
    """A CRD that accepts anything of kind: enough for the API server to dry-run the chart's
    cert-manager and Prometheus Operator objects without installing either."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


STUBS = [
    stub_crd("cert-manager.io", "Certificate", "certificates"),
    stub_crd("cert-manager.io", "Issuer", "issuers"),
    stub_crd("monitoring.coreos.com", "ServiceMonitor", "servicemonitors"),
    stub_crd("monitoring.coreos.com", "PrometheusRule", "prometheusrules"),
]


def all_but_crds(directory: Path) -> Path:
    """deploy/modelgate.yaml less its CRDs and the Namespace (custom resources and the seal key
    Secret live on), as a file for `kubectl delete -f`."""
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]
    path = directory / "all-but-crds.yaml"
    kept = ("CustomResourceDefinition", "Namespace")
    path.write_text(yaml.safe_dump_all([d for d in docs if d["kind"] not in kept]))
    return path


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with own_cluster("chart", install=False) as c:
        # A kept control plane (MODELGATE_KEEP_CLUSTER) may hold the release, or the applied
        # deploy/modelgate.yaml, of an earlier run: remove all of it but the CRDs.
        run_helm("uninstall", "modelgate", "-n", NS, "--kubeconfig", str(c.kubeconfig), "--ignore-not-found")
        rest = all_but_crds(tmp_path_factory.mktemp("rest"))
        c.kubectl("delete", "-f", str(rest), "--ignore-not-found", "--wait", timeout=300)
        yield c


@pytest.mark.parametrize("values", [(), EVERYTHING], ids=["defaults", "everything-enabled"])
def test_the_render_passes_a_server_side_dry_run(own: Cluster, values: tuple[str, ...]) -> None:
    k = own.kubectl
    ns = "modelgate-dryrun"
    if k.get("namespace", ns) is None:
        k("create", "namespace", ns)
    if values:
        k("apply", "-f", "-", input="\n---\n".join(json.dumps(s) for s in STUBS))
        for s in STUBS:
            k("wait", "--for=condition=Established", "--timeout=60s", f"crd/{s['metadata']['name']}")
    docs = template(*values, namespace=ns)
    res = k(
        "apply", "--dry-run=server", "-f", "-", input="\n---\n".join(json.dumps(d) for d in docs), check=False
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("(server dry run)") == len(docs), res.stdout


class Install:
    """State the ordered lifecycle tests below share: install, operate, upgrade, uninstall."""

    webhook_port = 0
    steady: ClassVar[dict[str, Any]] = {}


@pytest.fixture(scope="module")
def installed(own: Cluster) -> Cluster:
    Install.webhook_port = free_port()
    url = f"https://127.0.0.1:{Install.webhook_port}/"
    run_helm(
        "install",
        "modelgate",
        str(CHART),
        "-n",
        NS,
        "--create-namespace",
        "--kubeconfig",
        str(own.kubeconfig),
        "--set",
        f"webhook.url={url}",
        "--wait",
        "--timeout",
        "120s",
    )
    return own


def test_helm_install_creates_every_object(installed: Cluster) -> None:
    k = installed.kubectl
    for crd in MODELGATE_KINDS:
        assert k.get("crd", f"{crd}.modelgate.io") is not None, crd
    for kind, name, ns in [
        ("serviceaccount", "modelgate-operator", NS),
        ("role", "modelgate-operator", NS),
        ("rolebinding", "modelgate-operator", NS),
        ("service", "modelgate-webhook", NS),
        ("service", "modelgate-metrics", NS),
        ("poddisruptionbudget", "modelgate-operator", NS),
        ("clusterrole", "modelgate-operator", None),
        ("clusterrolebinding", "modelgate-operator", None),
        *(("clusterrole", f"modelgate-{r}", None) for r in ("deployer", "approver", "evaluator", "auditor")),
        ("mutatingwebhookconfiguration", "modelgate.io", None),
        ("validatingwebhookconfiguration", "modelgate.io", None),
        ("validatingadmissionpolicy", "modelgate-records-operator-only", None),
        ("validatingadmissionpolicybinding", "modelgate-serving-objects", None),
    ]:
        assert k.get(kind, name, ns) is not None, (kind, name)
    dep = k.get("deployment", "modelgate-operator", NS)
    # kwok "runs" the pods (they do nothing): the Deployment, PDB and spread are accepted and schedule.
    assert dep["status"].get("availableReplicas") == 2, dep["status"]
    hooks = k.get("validatingwebhookconfiguration", "modelgate.io")
    assert (
        hooks["webhooks"][0]["clientConfig"]["url"]
        == f"https://127.0.0.1:{Install.webhook_port}/validate-approval"
    )
    notes = run_helm("get", "notes", "modelgate", "-n", NS, "--kubeconfig", str(installed.kubeconfig)).stdout
    assert "modelgate run" in notes and "helm uninstall" in notes


def sa_kubeconfig(cluster: Cluster, path: Path) -> Path:
    """A kubeconfig with a TokenRequest token of the chart's ServiceAccount and nothing else."""
    token = cluster.kubectl("create", "token", "modelgate-operator", "-n", NS, "--duration=2h").stdout.strip()
    claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "==="))
    assert claims["sub"] == SA
    admin = yaml.safe_load(cluster.kubeconfig.read_text())
    cfg = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "sa",
        "clusters": admin["clusters"],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": admin["clusters"][0]["name"], "user": "sa"}}],
    }
    path.write_text(json.dumps(cfg))
    return path


CAN_I = [
    # (verb, resource, namespace or None, expected)
    ("get", "secrets", NS, "yes"),
    ("create", "secrets", NS, "yes"),
    ("update", "secrets", NS, "yes"),
    ("delete", "secrets", NS, "no"),
    ("list", "secrets", NS, "no"),
    ("get", "secrets", "default", "no"),
    ("get", "secrets", "kube-system", "no"),
    ("list", "secrets", None, "no"),
    ("get", "leases", NS, "yes"),
    ("update", "leases", NS, "yes"),
    ("get", "leases", "kube-system", "no"),
    ("update", "mutatingwebhookconfigurations/modelgate.io", None, "yes"),
    ("update", "validatingwebhookconfigurations/modelgate.io", None, "yes"),
    ("patch", "validatingwebhookconfigurations/modelgate.io", None, "yes"),
    ("delete", "validatingwebhookconfigurations/modelgate.io", None, "no"),
    ("update", "validatingwebhookconfigurations/another-webhook", None, "no"),
    ("update", "mutatingwebhookconfigurations/another-webhook", None, "no"),
    ("create", "mutatingwebhookconfigurations", None, "no"),
    ("create", "validatingwebhookconfigurations", None, "no"),
    ("delete", "validatingadmissionpolicies", None, "no"),
    ("update", "validatingadmissionpolicybindings", None, "no"),
    ("delete", "customresourcedefinitions", None, "no"),
    ("update", "customresourcedefinitions", None, "no"),
    ("impersonate", "users", None, "no"),
    ("impersonate", "serviceaccounts", None, "no"),
    ("impersonate", "groups", None, "no"),
    ("escalate", "clusterroles", None, "no"),
    ("bind", "clusterroles", None, "no"),
    ("create", "clusterrolebindings", None, "no"),
    ("create", "rolebindings", NS, "no"),
    ("create", "pods", "default", "no"),
    ("create", "serviceaccounts/token", NS, "no"),
    ("delete", "namespaces", None, "no"),
    ("create", "modelapprovals", "default", "no"),
    ("delete", "modelrecords", "default", "no"),
    ("patch", "modeldeployments", "default", "yes"),
    ("create", "deployments", "default", "yes"),
    ("manage", "servingobjects.modelgate.io", "default", "yes"),
    ("patch", "policyreports.wgpolicyk8s.io", "default", "yes"),
    ("delete", "policyreports.wgpolicyk8s.io", "default", "yes"),
    ("update", "policyreports.wgpolicyk8s.io", "default", "no"),
    ("create", "clusterpolicyreports.wgpolicyk8s.io", None, "no"),
]
"""The can-i matrix of the chart's ServiceAccount, asked with its own token."""


def can_i(sa: Kubectl, verb: str, resource: str, ns: str | None) -> str:
    """`kubectl auth can-i` with the ServiceAccount's own token; a SelfSubjectAccessReview for the
    virtual servingobjects.modelgate.io and the PolicyReports (no API serves them here, so kubectl
    cannot resolve them)."""
    if resource.endswith((".modelgate.io", ".wgpolicyk8s.io")):
        plural, group = resource.split(".", 1)
        attrs = {"group": group, "resource": plural, "verb": verb, "namespace": ns or ""}
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attrs},
        }
        out = json.loads(sa("create", "-o", "json", "-f", "-", input=json.dumps(review)).stdout)
        return "yes" if out["status"].get("allowed") else "no"
    where = ["-n", ns] if ns else []
    return str(sa("auth", "can-i", verb, resource, *where, check=False).stdout.strip())


def test_the_chart_service_account_may_do_only_what_the_operator_needs(
    installed: Cluster, tmp_path: Path
) -> None:
    sa = Kubectl(installed.kubectl.binary, sa_kubeconfig(installed, tmp_path / "sa.kubeconfig"))
    rows, wrong = [], []
    for verb, resource, ns, expected in CAN_I:
        got = can_i(sa, verb, resource, ns)
        rows.append(f"| {verb} | {resource} | {ns or '(cluster)'} | {got} |")
        if got != expected:
            wrong.append(f"{verb} {resource} in {ns or 'the cluster'}: {got}, expected {expected}")
    matrix = "| verb | resource | namespace | allowed |\n| --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    LOGS.mkdir(parents=True, exist_ok=True)
    (LOGS / "chart-can-i-matrix.md").write_text(matrix)
    print(matrix)
    assert not wrong, "\n".join(wrong)


def wait_phase(k: Kubectl, ns: str, phase: str, name: str = "fraud", timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        obj = k.get("mdep", name, ns) or {}
        st = obj.get("status") or {}
        current = st.get("observedGeneration") == obj.get("metadata", {}).get("generation")
        return obj if current and st.get("phase") == phase else None

    return wait_until(f"ModelDeployment {ns}/{name} to reach {phase}", probe, timeout=timeout)


def operator_flags() -> list[str]:
    """--leader-elect when this checkout's operator has it (issue 12's HA part): the chart runs it so."""
    out = subprocess.run([sys.executable, "-m", "modelgate", "run", "--help"], capture_output=True, text=True)
    return ["--leader-elect"] if "--leader-elect" in out.stdout else []


def test_the_operator_as_the_chart_service_account_admits_blocks_and_suspends_then_survives_an_upgrade(
    installed: Cluster, tmp_path: Path
) -> None:
    k = installed.kubectl
    ns = f"lp-{uuid.uuid4().hex[:6]}"
    k("create", "namespace", ns)
    k("label", "namespace", ns, f"modelgate.io/test={ns}")
    k.apply(m.policy("least-privilege", ns))
    log = LOGS / "chart-sa-operator.log"
    kubeconfig = sa_kubeconfig(installed, tmp_path / "sa.kubeconfig")
    with run_operator(
        kubeconfig,
        log,
        "--webhook-host",
        "127.0.0.1",
        "--webhook-port",
        str(Install.webhook_port),
        *client_ca_args(installed.kubeconfig),
        *operator_flags(),
    ):
        wait_until("the webhooks to answer", lambda: webhooks_answer(k))
        # Blocked: no approval yet.
        m.submit(k, m.evaluation("fraud-eval", ns, "fraud"))
        m.deploy(k, m.model_deployment("fraud", ns, approvals=("fraud-ethics",), evaluations=("fraud-eval",)))
        obj = wait_phase(k, ns, "Blocked")
        assert condition(obj, "Approved")["status"] == "False"  # type: ignore[index]
        # Approved: serving.
        m.approve(k, m.approval("fraud-ethics", ns, "fraud"))
        wait_phase(k, ns, "Serving")
        assert k.get("deployment", "fraud", ns) is not None
        # Revoked: suspended (the policy's onRevocation), Blocked.
        k("delete", "modelapproval", "fraud-ethics", "-n", ns)
        obj = wait_phase(k, ns, "Blocked")
        assert obj["status"]["history"][-1]["action"] == "Suspended"
        wait_until(
            "the serving Deployment to scale to zero",
            lambda: (k.get("deployment", "fraud", ns) or {}).get("spec", {}).get("replicas") == 0,
        )
        # A second model that stays serving through the upgrade.
        m.approve(k, m.approval("steady-ethics", ns, "steady"))
        m.submit(k, m.evaluation("steady-eval", ns, "steady"))
        m.deploy(
            k, m.model_deployment("steady", ns, approvals=("steady-ethics",), evaluations=("steady-eval",))
        )
        before = wait_phase(k, ns, "Serving", name="steady")
        dep_before = k.get("deployment", "steady", ns)

        run_helm(
            "upgrade",
            "modelgate",
            str(CHART),
            "-n",
            NS,
            "--kubeconfig",
            str(installed.kubeconfig),
            "--reuse-values",
            "--set",
            "podAnnotations.upgraded=yes",
            "--wait",
            "--timeout",
            "120s",
        )
        # The webhooks still answer (the upgrade kept the CA bundle the operator wrote in), and the
        # operator still acts: a new model is judged (Blocked: no evidence).
        wait_until("the webhooks to answer after the upgrade", lambda: webhooks_answer(k))
        m.deploy(k, m.model_deployment("after", ns))
        wait_phase(k, ns, "Blocked", name="after")
        after = k.get("mdep", "steady", ns)
        assert after["status"]["phase"] == "Serving"
        assert after["status"]["history"] == before["status"]["history"], "re-admitted after the upgrade"
        dep_after = k.get("deployment", "steady", ns)
        assert (dep_after["metadata"]["uid"], dep_after["metadata"]["generation"]) == (
            dep_before["metadata"]["uid"],
            dep_before["metadata"]["generation"],
        )
        pod_annotations = k.get("deployment", "modelgate-operator", NS)["spec"]["template"]["metadata"]
        assert pod_annotations["annotations"] == {"upgraded": "yes"}
    text = log.read_text()
    assert "Forbidden" not in text and "forbidden" not in text, text[-3000:]
    Install.steady = {"namespace": ns, "uid": after["metadata"]["uid"]}


def webhooks_answer(k: Kubectl) -> bool:
    res = k(*PROBE_ARGS, input=probe_input(), check=False)
    return probe_answered(res.returncode, res.stdout)


def test_helm_uninstall_keeps_the_crds_and_every_custom_resource(installed: Cluster) -> None:
    assert Install.steady, "runs after the admission test, which leaves models behind"
    k = installed.kubectl
    ns = Install.steady["namespace"]
    before = {kind: k.json("get", kind, "-A")["items"] for kind in MODELGATE_KINDS}
    assert before["modeldeployments"] and before["modelapprovals"] and before["modelevaluations"]
    run_helm("uninstall", "modelgate", "-n", NS, "--kubeconfig", str(installed.kubeconfig), "--wait")
    assert k.get("clusterrole", "modelgate-operator") is None
    assert k.get("validatingwebhookconfiguration", "modelgate.io") is None
    for kind in MODELGATE_KINDS:
        assert k.get("crd", f"{kind}.modelgate.io") is not None, kind
        after = k.json("get", kind, "-A")["items"]
        assert sorted(o["metadata"]["uid"] for o in after) == sorted(
            o["metadata"]["uid"] for o in before[kind]
        ), kind
    assert k.get("mdep", "steady", ns)["metadata"]["uid"] == Install.steady["uid"]
    assert k.get("deployment", "steady", ns) is not None


def test_kubectl_apply_of_deploy_manifest_alone_installs_everything(
    installed: Cluster, tmp_path: Path
) -> None:
    """Without Helm: the rendered file creates its own namespace and every object (after the
    uninstall above, on the same control plane; the namespace is deleted first, its seal key
    Secret backed up and restored, as an operator's backup would: sealed evidence lives on)."""
    k = installed.kubectl
    seal = k.get("secret", "modelgate-signing-keys", NS)
    assert seal is not None, "the operator made its signing key under the chart's Role"
    k("delete", "namespace", NS, "--timeout=120s")
    docs = [d for d in yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8")) if d]
    k("apply", "-f", str(MANIFEST))
    backup = {"apiVersion": "v1", "kind": "Secret", "type": seal["type"], "data": seal["data"]}
    backup["metadata"] = {"name": "modelgate-signing-keys", "namespace": NS}
    k("create", "-f", "-", input=json.dumps(backup))
    try:
        for d in docs:
            ns = d["metadata"].get("namespace")
            assert k.get(d["kind"], d["metadata"]["name"], ns) is not None, (d["kind"], d["metadata"]["name"])
        dep = wait_until(
            "the operator Deployment to schedule its 2 replicas",
            lambda: (
                (k.get("deployment", "modelgate-operator", NS) or {})
                .get("status", {})
                .get("availableReplicas")
                == 2
                or None
            ),
        )
        assert dep
    finally:
        # Leave the CRDs (custom resources live on); remove the rest, so that a kept control plane
        # (MODELGATE_KEEP_CLUSTER) can `helm install` again.
        k("delete", "-f", str(all_but_crds(tmp_path)), "--ignore-not-found", "--wait", timeout=300)
