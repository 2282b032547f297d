"""charts/modelgate rendered and linted with the Helm binary hack/build-helm.sh builds (no cluster):
`helm lint --strict`, the schema's refusals, the webhooks against
operator/modelgate/webhooks/configuration.py, the shipped roles (no wildcard, no privilege verb),
the operator's pods, deploy/modelgate.yaml up to date and what the checkout installs of it.
tests/e2e/test_chart_install.py installs the chart on a control plane.
"""

from __future__ import annotations

from typing import Any

import pytest
from hack.launch import INSTALL_KINDS, MANIFEST, install_documents
from hack.manifests import render

from modelgate.webhooks.configuration import Endpoint, configurations
from tests.support.helm import CHART, EVERYTHING, NS, of_kind, run_helm, template

pytestmark = pytest.mark.integration


def test_helm_is_the_pinned_version() -> None:
    assert run_helm("version", "--short").stdout.startswith("v4.3.2"), (
        "hack/helm/go.mod pins helm.sh/helm/v4 v4.3.2"
    )


def test_helm_lint_strict_passes() -> None:
    res = run_helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in res.stdout, res.stdout


def test_the_default_render_has_everything_the_issue_lists_and_nothing_optional() -> None:
    kinds = sorted(d["kind"] for d in template())
    assert kinds == sorted(
        ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]
        + ["ClusterRole"] * 4  # deployer, approver, evaluator, auditor
        + ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"] * 4
        + ["Deployment", "PodDisruptionBudget", "Service", "Service"]
        + ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
    )


def test_optional_blocks_render_only_where_their_api_is_served() -> None:
    on = ("--set", "serviceMonitor.enabled=true,prometheusRule.enabled=true")
    assert not {"ServiceMonitor", "PrometheusRule"} & {d["kind"] for d in template(*on)}
    kinds = {d["kind"] for d in template(*EVERYTHING)}
    assert {"ServiceMonitor", "PrometheusRule", "Certificate", "Issuer", "NetworkPolicy"} <= kinds


def test_cert_manager_without_its_api_fails_naming_it() -> None:
    res = run_helm("template", "modelgate", str(CHART), "--set", "certManager.enabled=true", check=False)
    assert res.returncode != 0 and "cert-manager.io/v1" in res.stderr, res.stderr


def test_cert_manager_mounts_its_certificate_and_annotates_both_configurations() -> None:
    docs = template(*EVERYTHING)
    (dep,) = of_kind(docs, "Deployment")
    args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--webhook-cert-dir=/etc/modelgate/webhook-cert" in args
    serving = next(c for c in of_kind(docs, "Certificate") if not c["spec"].get("isCA"))
    assert serving["spec"]["secretName"] == "modelgate-webhook-cert"
    for kind in ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"):
        (cfg,) = of_kind(docs, kind)
        assert cfg["metadata"]["annotations"]["cert-manager.io/inject-ca-from"] == f"{NS}/modelgate-webhook"


@pytest.mark.parametrize(
    ("values", "error"),
    [
        (("--set", "replicas=2"), "additional properties 'replicas' not allowed"),
        (("--set", "image.registry=x"), "additional properties 'registry' not allowed"),
        (("--set", "certManager.issuer=x"), "additional properties 'issuer' not allowed"),
        (("--set", "replicaCount=two"), "got string, want integer"),
        (("--set", "userRoles.enabled=maybe"), "got string, want boolean"),
        (("--set-json", 'operator.namespaces="team-a"'), "got string, want array"),
        (("--set", "webhook.port=70000"), "maximum"),
    ],
)
def test_the_schema_refuses_unknown_keys_and_wrong_types(values: tuple[str, ...], error: str) -> None:
    res = run_helm("template", "modelgate", str(CHART), *values, check=False)
    assert res.returncode != 0
    assert "values don't meet the specifications of the schema" in res.stderr, res.stderr
    assert error in res.stderr, res.stderr


def test_the_chart_webhooks_are_the_operators_except_client_config() -> None:
    def without_client_config(cfgs: list[dict[str, Any]]) -> list[Any]:
        return [
            (
                c["kind"],
                c["metadata"]["name"],
                [{k: v for k, v in w.items() if k != "clientConfig"} for w in c["webhooks"]],
            )
            for c in cfgs
        ]

    def client_configs(cfgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {k: v for k, v in w["clientConfig"].items() if k != "caBundle"}
            for c in cfgs
            for w in c["webhooks"]
        ]

    kinds = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
    for values, endpoint in (
        ((), Endpoint(b"ca", service_namespace=NS, service_name="modelgate-webhook")),
        (("--set", "webhook.url=https://127.0.0.1:9443/"), Endpoint(b"ca", url="https://127.0.0.1:9443")),
    ):
        chart = [d for d in template(*values) if d["kind"] in kinds]
        ours = configurations(endpoint)
        assert without_client_config(chart) == without_client_config(ours)
        assert client_configs(chart) == client_configs(ours)
        assert all("caBundle" not in w["clientConfig"] for c in chart for w in c["webhooks"])


def shipped_roles() -> list[dict[str, Any]]:
    return [d for d in template(*EVERYTHING) if d["kind"] in ("ClusterRole", "Role")]


def test_no_shipped_role_has_a_wildcard_or_a_privilege_verb() -> None:
    roles = shipped_roles()
    assert {r["metadata"]["name"] for r in roles} >= {
        "modelgate-operator",
        "modelgate-deployer",
        "modelgate-auditor",
    }
    problems = []
    for role in roles:
        for i, rule in enumerate(role["rules"]):
            where = f"{role['kind']} {role['metadata']['name']} rule {i}"
            for field in ("apiGroups", "resources", "verbs", "resourceNames", "nonResourceURLs"):
                if any("*" in v for v in rule.get(field, [])):
                    problems.append(f"{where}: * in {field}")
            if {"escalate", "bind", "impersonate"} & set(rule["verbs"]):
                problems.append(
                    f"{where}: {sorted({'escalate', 'bind', 'impersonate'} & set(rule['verbs']))}"
                )
    assert not problems, "\n".join(problems)


def test_the_operator_reads_secrets_only_in_its_namespace_and_touches_only_its_webhooks() -> None:
    roles = {(r["kind"], r["metadata"]["name"]): r for r in shipped_roles()}
    cluster_rules = roles[("ClusterRole", "modelgate-operator")]["rules"]
    assert not [r for r in cluster_rules if "secrets" in r["resources"]]
    (hooks,) = [r for r in cluster_rules if "admissionregistration.k8s.io" in r["apiGroups"]]
    assert hooks["resourceNames"] == ["modelgate.io"] and sorted(hooks["verbs"]) == ["get", "patch", "update"]
    ns_rules = roles[("Role", "modelgate-operator")]["rules"]
    assert {(r["apiGroups"][0], r["resources"][0]): sorted(r["verbs"]) for r in ns_rules} == {
        ("", "secrets"): ["create", "get", "update"],
        ("", "configmaps"): ["create", "get", "patch"],  # modelgate-trust: the public keys
        ("coordination.k8s.io", "leases"): ["create", "get", "update"],
    }


def test_the_operator_pods_are_hardened_and_sized() -> None:
    (dep,) = of_kind(template(), "Deployment")
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert dep["spec"]["replicas"] == 2
    assert pod["topologySpreadConstraints"][0]["topologyKey"] == "kubernetes.io/hostname"
    assert pod["securityContext"]["runAsNonRoot"] and pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = c["securityContext"]
    assert (sc["readOnlyRootFilesystem"], sc["allowPrivilegeEscalation"], sc["capabilities"]) == (
        True,
        False,
        {"drop": ["ALL"]},
    )
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    for probe in (c["livenessProbe"], c["readinessProbe"]):
        assert probe["httpGet"] == {"path": "/healthz", "port": "health"}
    assert c["resources"]["requests"]["memory"] == "256Mi"
    assert [e["name"] for e in c["env"]][:2] == ["POD_NAME", "POD_NAMESPACE"]
    assert c["args"][:3] == ["run", "--leader-elect", f"--operator-namespace={NS}"]
    assert f"--webhook-service={NS}/modelgate-webhook" in c["args"]
    (pdb,) = of_kind(template(), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1


def test_deploy_manifest_is_the_chart_rendered_with_defaults() -> None:
    assert MANIFEST.read_text(encoding="utf-8") == render(), (
        "deploy/modelgate.yaml is stale: run make manifests"
    )


def test_the_checkout_install_takes_roles_and_policies_but_no_operator_or_webhooks() -> None:
    docs = install_documents(MANIFEST.read_text(encoding="utf-8"))
    kinds = {d["kind"] for d in docs}
    assert kinds == INSTALL_KINDS
    assert not kinds & {"Deployment", "Service", "MutatingWebhookConfiguration", "CustomResourceDefinition"}


# --- on a control plane of its own ------------------------------------------------------------
