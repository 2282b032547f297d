"""Two operator shards on one cluster (docs/sharding.md): each owns the ModelDeployments its
--selector claims, with its own Lease; one serves the webhooks for both. The API server's audit
log (user agents carry each replica's identity) shows that no object is written by both, and that
each shard's model writes touch only its own models; a model moved between shards is the new
shard's from then on; a shard label nobody runs is refused by the chart's policy."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from hack.launch import client_ca_args, free_port

from tests.e2e.test_leader_election import (
    _list,
    admitted,
    approve_all,
    audit_log,
    serving,
)
from tests.support import manifests as m
from tests.support.clusters import ROOT, audited_cluster
from tests.support.helm import template
from tests.support.kube import Cluster, Kubectl, wait_until
from tests.support.operator import run_operator

pytestmark = pytest.mark.integration

WRITES = {"create", "update", "patch", "delete", "deletecollection"}
MODEL_RESOURCES = {"modeldeployments", "deployments", "services", "modelrecords"}
SHARD = "modelgate.io/shard"


@pytest.fixture(scope="module")
def shard_cluster() -> Iterator[Cluster]:
    with audited_cluster("shard") as cluster:  # the audit log tells who wrote what
        yield cluster


@pytest.fixture(scope="module")
def shards(shard_cluster: Cluster) -> Iterator[dict[str, str]]:
    """The default shard (`!modelgate.io/shard`, no webhooks) and shard `a` (serving the webhooks
    for both); identity by shard name."""
    run = uuid.uuid4().hex[:4]
    logs = ROOT / ".cache" / "test-logs" / "sharding"
    logs.mkdir(parents=True, exist_ok=True)
    kubectl = shard_cluster.kubectl
    common = ("--leader-elect", "--namespace", "s-*", "--leader-election-retry-period", "1")
    with ExitStack() as stack:
        ids = {}
        for shard, args in (
            ("default", ("--selector", f"!{SHARD}", "--webhook-port", "0")),
            ("a", ("--selector", f"{SHARD}=a", "--webhook-port", str(free_port()))),
        ):
            ident = f"shard-{run}-{shard}"
            stack.enter_context(
                run_operator(
                    shard_cluster.kubeconfig,
                    logs / f"{ident}.log",
                    *common,
                    "--leader-election-id",
                    f"modelgate-shard-{shard}",
                    *args,
                    *client_ca_args(shard_cluster.kubeconfig),
                    env={"POD_NAME": ident},
                )
            )
            lease = f"modelgate-shard-{shard}"
            wait_until(
                f"shard {shard} to take its Lease",
                lambda lease=lease, ident=ident: (
                    (kubectl.get("lease", lease, "modelgate-system") or {})
                    .get("spec", {})
                    .get("holderIdentity")
                    == ident
                ),
                timeout=60,
            )
            ids[shard] = ident
        yield ids


@pytest.fixture
def ns(shard_cluster: Cluster) -> Iterator[str]:
    with m.governed_namespace(shard_cluster.kubectl, "s") as name:
        yield name


def deploy(kubectl: Kubectl, ns: str, names: dict[str, str | None]) -> None:
    models = []
    for name, shard in names.items():
        md = m.model_deployment(
            name, ns, replicas=1, approvals=(f"{name}-ok",), evaluations=(f"{name}-eval",)
        )
        if shard:
            md["metadata"].setdefault("labels", {})[SHARD] = shard
        models.append(md)
    kubectl.apply(_list(models), as_user="alice", as_groups=m.DEPLOYERS)


def written(entries: list[dict[str, Any]], identity: str, after: str = "") -> set[tuple[str, str, str]]:
    """(resource, namespace, name) of every object `identity` wrote (after `after`)."""
    return {
        (
            e.get("objectRef", {}).get("resource", ""),
            e.get("objectRef", {}).get("namespace", ""),
            e.get("objectRef", {}).get("name", ""),
        )
        for e in entries
        if f"({identity})" in e.get("userAgent", "")
        and e.get("verb") in WRITES
        and e.get("requestReceivedTimestamp", "") > after
    }


def model_writes(objs: set[tuple[str, str, str]], ns: str) -> set[str]:
    return {name for resource, namespace, name in objs if namespace == ns and resource in MODEL_RESOURCES}


def test_two_shards_admit_their_own_models_and_never_write_the_same_object(
    shard_cluster: Cluster, shards: dict[str, str], ns: str
) -> None:
    kubectl = shard_cluster.kubectl
    mine = {"a": {"a1", "a2"}, "default": {"d1", "d2"}}
    names = sorted(mine["a"] | mine["default"])
    approve_all(kubectl, ns, names)  # through shard a's webhooks, d1 and d2 included
    deploy(kubectl, ns, {n: ("a" if n in mine["a"] else None) for n in names})
    wait_until("every model of both shards to serve", lambda: len(serving(kubectl, ns)) == 4, timeout=180)

    # The webhook server of shard a fills in the revision of a default-shard model: its index sees
    # every ModelDeployment, not only its shard's.
    probe = m.approval("d1-probe", ns, "d1", revision=None)
    stamped = json.loads(
        kubectl("create", "--dry-run=server", "-o", "json", "-f", "-", input=json.dumps(probe)).stdout
    )
    assert stamped["spec"]["model"]["revision"] == m.default_revision("d1")

    last = {"a": "a2", "default": "d2"}
    entries: list[dict[str, Any]] = []

    def both_in_log() -> bool:
        nonlocal entries
        entries = audit_log(shard_cluster)
        return all(last[s] in model_writes(written(entries, shards[s]), ns) for s in shards)

    wait_until("both shards' writes in the audit log", both_in_log, timeout=120)
    by = {s: written(entries, shards[s]) for s in shards}
    assert by["a"] & by["default"] == set(), "an object written by both shards"
    for shard in shards:
        assert model_writes(by[shard], ns) == mine[shard], shard
    # Evidence is sealed by the default shard only (the shard that claims unlabelled models).
    sealed = {s: {n for r, _ns, n in by[s] if r in ("modelapprovals", "modelevaluations")} for s in shards}
    assert sealed["a"] == set() and len(sealed["default"]) == 8, sealed


def test_a_model_moved_to_another_shard_is_governed_by_that_shard_alone(
    shard_cluster: Cluster, shards: dict[str, str], ns: str
) -> None:
    kubectl = shard_cluster.kubectl
    approve_all(kubectl, ns, ["mv"])
    deploy(kubectl, ns, {"mv": None})
    wait_until("the model to serve on the default shard", lambda: "mv" in serving(kubectl, ns), timeout=120)
    kubectl("label", "mdep", "mv", "-n", ns, f"{SHARD}=a")
    moved = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # Tamper with it: only its new shard puts it back.
    kubectl("delete", "service", "mv", "-n", ns)

    def restored_by_a() -> bool:
        entries = audit_log(shard_cluster)
        return ("services", ns, "mv") in written(entries, shards["a"], after=moved)

    wait_until("shard a to put the Service back", restored_by_a, timeout=120)
    entries = audit_log(shard_cluster)
    assert model_writes(written(entries, shards["default"], after=moved), ns) == set()
    assert admitted(kubectl, ns, "mv")


def test_a_shard_label_nobody_runs_is_refused_by_the_chart_policy(
    shard_cluster: Cluster, shards: dict[str, str], ns: str
) -> None:
    kubectl = shard_cluster.kubectl
    docs = [
        d
        for d in template("--set", "sharding.shards={a}", "--show-only", "templates/admission-shards.yaml")
        if d["kind"].startswith("ValidatingAdmissionPolicy")
    ]
    assert [d["kind"] for d in docs] == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    kubectl.apply(_list(docs))
    try:
        md = m.model_deployment("nobody", ns, replicas=1)
        md["metadata"]["labels"] = {SHARD: "nobody"}

        def refused() -> str | None:  # the policy takes a moment to be enforced: dry runs until then
            res = kubectl("create", "--dry-run=server", "-f", "-", input=json.dumps(md), check=False)
            return res.stderr if res.returncode != 0 else None

        wait_until("the policy to refuse an unclaimed shard label", refused, timeout=60)
        res = kubectl.apply(md, as_user="alice", as_groups=m.DEPLOYERS, check=False)
        assert res.returncode != 0 and "no modelgate shard claims modelgate.io/shard=nobody" in res.stderr
        assert kubectl.get("mdep", "nobody", ns) is None
        # Relabelling a governed model out of every shard is refused the same way.
        approve_all(kubectl, ns, ["held"])
        deploy(kubectl, ns, {"held": "a"})
        res = kubectl("label", "--overwrite", "mdep", "held", "-n", ns, f"{SHARD}=nobody", check=False)
        assert res.returncode != 0 and "no modelgate shard claims" in res.stderr
        assert kubectl.get("mdep", "held", ns)["metadata"]["labels"][SHARD] == "a"
    finally:
        for d in docs:
            kubectl("delete", d["kind"], d["metadata"]["name"], "--ignore-not-found", check=False)


def test_a_webhook_server_watching_other_namespaces_still_refuses_a_self_approval(
    shard_cluster: Cluster, shards: dict[str, str]
) -> None:
    """Shard a watches only s-*: for a namespace outside them it reads the namespace, the policies
    and the ModelDeployments from the API server, so separation of duties holds whichever shard's
    webhook answers. (Run alone, no s-* namespace exists, and Kopf then watches no policy either.)"""
    kubectl = shard_cluster.kubectl
    with m.governed_namespace(kubectl, "u") as other:
        kubectl.apply(m.policy(f"p-{other}", other, separation=True))
        deploy(kubectl, other, {"solo": None})  # alice sets the digest
        self_approval = m.approval("solo-self", other, "solo")

        def refused() -> str | None:  # once shard a's indexes hold the new namespace and policy
            res = kubectl.apply(
                self_approval, "--dry-run=server", as_user="alice", as_groups=("ethics-board",), check=False
            )
            return res.stderr if res.returncode != 0 else None

        err = wait_until("the self-approval to be refused", refused, timeout=30)
        assert "separation of duties: alice set the digest" in err
        kubectl.apply(m.approval("solo-ok", other, "solo"), as_user="bob", as_groups=("ethics-board",))
