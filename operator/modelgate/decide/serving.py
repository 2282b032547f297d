"""The serving objects wanted for an admitted revision, and the normal form used to spot tampering.

Pure: builds plain Kubernetes manifests (dicts) from a revision and the serving spec. The
Deployment selector is the ModelDeployment's name only, so a new revision rolls the same
Deployment; the version and the revision id live in the pod labels and the env. The Service also
selects the revision id (`modelgate.io/revision`), so a pod that copies only the model's labels is
not an endpoint; the ValidatingAdmissionPolicy in
charts/modelgate/templates/admission-serving-labels.yaml refuses such pods outright.

Tampering: `normalised` keeps the whole Deployment spec (the whole pod template) and the whole
Service spec, less the values the API server fills in by default. Any other difference between what
is observed and what is wanted (a `command`, an init container, a volume, a ServiceAccount, ...) is
somebody else's edit, reverted by a server-side apply and, for fields modelgate does not set, a JSON
patch that removes them (decide/objects.py, act/kube.py). The defaults were
read from what kube-apiserver v1.37 returns for our desired objects (tests/unit/test_serving.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

LABEL_MODEL = "modelgate.io/model"
LABEL_VERSION = "modelgate.io/version"
LABEL_DEPLOYMENT = "modelgate.io/deployment"
LABEL_QUARANTINED = "modelgate.io/quarantined"
LABEL_REVISION = "modelgate.io/revision"
"""The revision id (decide/revision.py) on the pods; the Service selects it."""
ANNOTATION_DIGEST = "modelgate.io/digest"
CONTAINER = "model"


@dataclass(frozen=True)
class Revision:
    """One servable artifact: what an admission admits and a rollback returns to."""

    model: str
    version: str
    uri: str
    digest: str
    image: str
    id: str = ""
    """The revision id (decide/revision.py); empty for revisions recorded before ids existed."""


@dataclass(frozen=True)
class Owner:
    api_version: str
    kind: str
    name: str
    namespace: str
    uid: str


@dataclass(frozen=True)
class ServingSpec:
    replicas: int
    port: int
    resources: Mapping[str, Any] = field(default_factory=dict)
    env: Sequence[Mapping[str, str]] = ()


def labels(owner: Owner, rev: Revision) -> dict[str, str]:
    out = {LABEL_MODEL: rev.model, LABEL_VERSION: rev.version, LABEL_DEPLOYMENT: owner.name}
    if rev.id:
        out[LABEL_REVISION] = rev.id
    return out


def _meta(owner: Owner, rev: Revision) -> dict[str, Any]:
    return {
        "name": owner.name,
        "namespace": owner.namespace,
        "labels": {**labels(owner, rev), "app.kubernetes.io/managed-by": "modelgate"},
        "annotations": {ANNOTATION_DIGEST: rev.digest},
        "ownerReferences": _owner_references(owner),
    }


def _owner_references(owner: Owner) -> list[dict[str, Any]]:
    return [
        {
            "apiVersion": owner.api_version,
            "kind": owner.kind,
            "name": owner.name,
            "uid": owner.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def container_env(rev: Revision, serving: ServingSpec) -> list[dict[str, str]]:
    ours = [
        {"name": "MODEL_URI", "value": rev.uri},
        {"name": "MODEL_DIGEST", "value": rev.digest},
        {"name": "MODEL_NAME", "value": rev.model},
        {"name": "MODEL_VERSION", "value": rev.version},
    ]
    reserved = {e["name"] for e in ours}
    return ours + [
        {"name": e["name"], "value": e.get("value", "")} for e in serving.env if e["name"] not in reserved
    ]


def desired_deployment(owner: Owner, rev: Revision, serving: ServingSpec) -> dict[str, Any]:
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": rev.image,
        "env": container_env(rev, serving),
        "ports": [{"name": "http", "containerPort": serving.port, "protocol": "TCP"}],
    }
    if serving.resources:
        container["resources"] = dict(serving.resources)
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(owner, rev),
        "spec": {
            "replicas": serving.replicas,
            "selector": {"matchLabels": {LABEL_DEPLOYMENT: owner.name}},
            "template": {
                "metadata": {"labels": labels(owner, rev), "annotations": {ANNOTATION_DIGEST: rev.digest}},
                "spec": {"containers": [container]},
            },
        },
    }


def desired_service(
    owner: Owner, rev: Revision, serving: ServingSpec, quarantined: bool = False
) -> dict[str, Any]:
    """The Service in front of the serving pods: it selects the revision id as well as the model, so
    only pods of the admitted revision's template are endpoints. In quarantine its selector also
    requires `modelgate.io/quarantined: "false"`, a label no pod carries: traffic stops, the pods
    stay."""
    selector = {LABEL_DEPLOYMENT: owner.name}
    if rev.id:
        selector[LABEL_REVISION] = rev.id
    if quarantined:
        selector[LABEL_QUARANTINED] = "false"
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, rev),
        "spec": {
            "selector": selector,
            "ports": [{"name": "http", "port": serving.port, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def quarantine_network_policy(owner: Owner) -> dict[str, Any]:
    """A NetworkPolicy that admits no ingress to the model's quarantined pods (`<name>-quarantine`).
    The Service already selects none of them; this also cuts traffic that goes to pod IPs directly
    (where the cluster's network plugin enforces NetworkPolicies)."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {
            "name": quarantine_policy_name(owner.name),
            "namespace": owner.namespace,
            "labels": {LABEL_DEPLOYMENT: owner.name, "app.kubernetes.io/managed-by": "modelgate"},
            "ownerReferences": _owner_references(owner),
        },
        "spec": {
            "podSelector": {"matchLabels": {LABEL_DEPLOYMENT: owner.name, LABEL_QUARANTINED: "true"}},
            "policyTypes": ["Ingress"],
        },
    }


def quarantine_policy_name(name: str) -> str:
    return f"{name}-quarantine"


SERVICE_ALLOCATED_FIELDS = ("clusterIP", "clusterIPs", "ipFamilies", "ipFamilyPolicy")
"""Service spec fields the API server allocates: not ours to compare (or, with server-side apply, to
carry over)."""
ROLLOUT_FIELDS = ("observedGeneration", "readyReplicas", "updatedReplicas", "availableReplicas")
_KEPT_META = ("name", "namespace", "uid", "resourceVersion", "generation", "labels", "ownerReferences")


def essentials(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an owned Deployment or Service that decisions and writes read, in the object's own
    shape: the whole spec (what `normalised` compares), our labels and annotations (the applied
    hash), the owner references, the resourceVersion and the rollout status. The operator keeps only
    this for each owned object: ~11 KB of Python objects for our Deployment (tests/unit/data), where
    the watched object is ~29 KB (managedFields, the controller's annotations and status conditions
    are dropped)."""
    meta = obj.get("metadata") or {}
    kept_meta: dict[str, Any] = {k: meta[k] for k in _KEPT_META if k in meta}
    kept_meta["annotations"] = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("modelgate.io/")
    }
    out: dict[str, Any] = {"kind": obj.get("kind"), "metadata": kept_meta, "spec": obj.get("spec") or {}}
    if obj.get("kind") != "Service":
        status = obj.get("status") or {}
        out["status"] = {k: status[k] for k in ROLLOUT_FIELDS if k in status}
    return out


def without_version(essential: Mapping[str, Any]) -> dict[str, Any]:
    """`essentials` less the resourceVersion, which every write moves: two objects equal in this
    read the same to every decision. Shallow: shares everything else with its argument."""
    return {**essential, "metadata": {**essential["metadata"], "resourceVersion": None}}


def controller_ref(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The owner reference of the ModelDeployment that controls `obj`, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if ref.get("controller") and ref.get("kind") == "ModelDeployment" and ref.get("uid"):
            return dict(ref)
    return None


def controller_uid(obj: Mapping[str, Any]) -> str | None:
    """The uid of the ModelDeployment that controls `obj`, if any."""
    ref = controller_ref(obj)
    return str(ref["uid"]) if ref else None


# --- the normal form: server defaults removed -----------------------------------------------------

_ABSENT = object()
DEPLOYMENT_DEFAULTS: Mapping[str, Any] = {
    "revisionHistoryLimit": 10,
    "progressDeadlineSeconds": 600,
    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}},
}
POD_DEFAULTS: Mapping[str, Any] = {
    "restartPolicy": "Always",
    "terminationGracePeriodSeconds": 30,
    "dnsPolicy": "ClusterFirst",
    "securityContext": {},
    "schedulerName": "default-scheduler",
}
CONTAINER_DEFAULTS: Mapping[str, Any] = {
    "resources": {},
    "terminationMessagePath": "/dev/termination-log",
    "terminationMessagePolicy": "File",
}
SERVICE_DEFAULTS: Mapping[str, Any] = {
    "type": "ClusterIP",
    "sessionAffinity": "None",
    "internalTrafficPolicy": "Cluster",
}
"""Values kube-apiserver v1.37 fills in when a field is left out (`imagePullPolicy` depends on the
image, see `default_pull_policy`; `protocol: TCP` on ports; an empty env value is dropped)."""


def default_pull_policy(image: str) -> str:
    """The API server's default: Always for an untagged image or the tag `latest`, else IfNotPresent."""
    if "@" in image:
        return "IfNotPresent"
    tag = image.rsplit("/", 1)[-1].partition(":")[2]
    return "Always" if tag in ("", "latest") else "IfNotPresent"


def _drop(obj: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if defaults.get(k, _ABSENT) != v and v is not None}


def _ports(ports: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [_drop(p, {"protocol": "TCP"}) for p in ports]


def _container(c: Mapping[str, Any]) -> dict[str, Any]:
    out = _drop(c, {**CONTAINER_DEFAULTS, "imagePullPolicy": default_pull_policy(str(c.get("image", "")))})
    if "env" in out:
        out["env"] = [_drop(e, {"value": ""}) for e in out["env"]]
    if "ports" in out:
        out["ports"] = _ports(out["ports"])
    if "resources" in out:
        out["resources"] = _quantities(out["resources"])
        if not out["resources"]:
            del out["resources"]
    return out


def _template(template: Mapping[str, Any]) -> dict[str, Any]:
    meta = _drop(template.get("metadata") or {}, {"labels": {}, "annotations": {}})
    pod = _drop(template.get("spec") or {}, POD_DEFAULTS)
    for key in ("containers", "initContainers", "ephemeralContainers"):
        if key in pod:
            pod[key] = [_container(c) for c in pod[key]]
    return {"metadata": meta, "spec": pod}


def normalised(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """What must be equal between an owned object as observed and as wanted: modelgate's labels and
    digest annotation, and the whole spec less the server's defaults (and the Service addresses the
    server allocated). Two objects with equal normal forms need no write; any other difference is
    an edit by someone else."""
    if not obj:
        return None
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {
        "labels": {k: v for k, v in (meta.get("labels") or {}).items() if k.startswith("modelgate.io/")},
        "digest": (meta.get("annotations") or {}).get(ANNOTATION_DIGEST),
    }
    if obj.get("kind") == "Service":
        kept = _drop({k: v for k, v in spec.items() if k not in SERVICE_ALLOCATED_FIELDS}, SERVICE_DEFAULTS)
        kept["ports"] = _ports(kept.get("ports") or [])
        out["spec"] = kept
        return out
    kept = _drop(spec, {**DEPLOYMENT_DEFAULTS, "replicas": 1})
    kept["template"] = _template(spec.get("template") or {})
    out["spec"] = kept
    return out


Path = tuple[str | int, ...]
"""A place in a normal form: mapping keys and list indices, e.g. `("spec", "replicas")`."""


def difference_paths(have: Any, want: Any, path: Path = (), limit: int = 20) -> list[Path]:
    """The places where two normal forms differ (at most `limit`): the first level where both are not
    mappings, or not lists of the same length."""
    if have == want:
        return []
    if isinstance(have, Mapping) and isinstance(want, Mapping):
        out: list[Path] = []
        for k in sorted(set(have) | set(want), key=str):
            out += difference_paths(have.get(k), want.get(k), (*path, k), limit)
            if len(out) >= limit:
                break
        return out[:limit]
    if isinstance(have, list) and isinstance(want, list) and len(have) == len(want):
        out = []
        for i, (a, b) in enumerate(zip(have, want, strict=True)):
            out += difference_paths(a, b, (*path, i), limit)
        return out[:limit]
    return [path]


def dotted(path: Path) -> str:
    """`("spec", "template", "containers", 0, "command")` as `spec.template.containers[0].command`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "."


def differences(have: Any, want: Any, limit: int = 20) -> list[str]:
    """The paths where two normal forms differ (at most `limit`), e.g.
    `spec.template.spec.containers[0].command`: what an Event names as the foreign edit."""
    return [dotted(p) for p in difference_paths(have, want, limit=limit)]


_SUFFIX = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse_quantity(q: object) -> Decimal | str:
    """A Kubernetes resource quantity as a number (`0.5` == `500m`); unparseable text as is."""
    m = _QUANTITY.match(str(q).strip())
    if not m:
        return str(q)
    try:
        return Decimal(m.group(1)) * Decimal(str(_SUFFIX[m.group(2) or ""]))
    except InvalidOperation:
        return str(q)


def _quantities(resources: Mapping[str, Any]) -> dict[str, dict[str, Decimal | str]]:
    return {k: {n: parse_quantity(q) for n, q in (v or {}).items()} for k, v in resources.items() if v}
