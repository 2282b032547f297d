"""The serving objects wanted for an admitted revision, and the projection used to spot drift.

Pure: builds plain Kubernetes manifests (dicts) from a revision and the serving spec. The
Deployment selector is the ModelDeployment's name only, so a new revision rolls the same
Deployment; the version lives in the pod labels and the env.
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
    return {LABEL_MODEL: rev.model, LABEL_VERSION: rev.version, LABEL_DEPLOYMENT: owner.name}


def _meta(owner: Owner, rev: Revision) -> dict[str, Any]:
    return {
        "name": owner.name,
        "namespace": owner.namespace,
        "labels": {**labels(owner, rev), "app.kubernetes.io/managed-by": "modelgate"},
        "annotations": {ANNOTATION_DIGEST: rev.digest},
        "ownerReferences": [
            {
                "apiVersion": owner.api_version,
                "kind": owner.kind,
                "name": owner.name,
                "uid": owner.uid,
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


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
    """The Service in front of the serving pods. In quarantine its selector also requires
    `modelgate.io/quarantined: "false"`, a label no pod carries: traffic stops, the pods stay."""
    selector = {LABEL_DEPLOYMENT: owner.name}
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


SERVICE_ALLOCATED_FIELDS = (
    "clusterIP",
    "clusterIPs",
    "ipFamilies",
    "ipFamilyPolicy",
    "internalTrafficPolicy",
    "type",
    "sessionAffinity",
)
"""Service spec fields the API server fills in; a replace must carry them over unchanged."""
ROLLOUT_FIELDS = ("observedGeneration", "readyReplicas", "updatedReplicas", "availableReplicas")


def essentials(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an owned Deployment or Service that decisions and writes read, in the object's own
    shape: what `projection` and `rollout` look at, the applied hash, the resourceVersion, and the
    Service fields the API server allocated. The operator keeps only this for each owned object (a
    watched Deployment is ~29 KB of Python objects, its essentials ~3 KB)."""
    meta = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    kept_meta: dict[str, Any] = {
        k: meta[k] for k in ("name", "namespace", "resourceVersion", "generation", "labels") if k in meta
    }
    kept_meta["annotations"] = {
        k: v for k, v in (meta.get("annotations") or {}).items() if k.startswith("modelgate.io/")
    }
    out: dict[str, Any] = {"kind": obj.get("kind"), "metadata": kept_meta}
    if obj.get("kind") == "Service":
        out["spec"] = {k: spec[k] for k in ("selector", "ports", *SERVICE_ALLOCATED_FIELDS) if k in spec}
        return out
    template = spec.get("template") or {}
    kept_spec: dict[str, Any] = {
        "template": {
            "metadata": {"labels": (template.get("metadata") or {}).get("labels") or {}},
            "spec": {
                "containers": [
                    {k: c[k] for k in ("name", "image", "env", "ports", "resources") if k in c}
                    for c in (template.get("spec") or {}).get("containers") or []
                ]
            },
        }
    }
    if "replicas" in spec:
        kept_spec["replicas"] = spec["replicas"]
    status = obj.get("status") or {}
    out["spec"] = kept_spec
    out["status"] = {k: status[k] for k in ROLLOUT_FIELDS if k in status}
    return out


def without_version(essential: Mapping[str, Any]) -> dict[str, Any]:
    """`essentials` less the resourceVersion, which every write moves: two objects equal in this
    read the same to every decision. Shallow: shares everything else with its argument."""
    return {**essential, "metadata": {**essential["metadata"], "resourceVersion": None}}


def projection(obj: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The fields modelgate owns on a Deployment or Service, normalised so that server-side
    defaults do not count as a difference. Two objects with equal projections need no write."""
    if not obj:
        return None
    spec = obj.get("spec") or {}
    meta = obj.get("metadata") or {}
    out: dict[str, Any] = {
        "labels": {k: v for k, v in (meta.get("labels") or {}).items() if k.startswith("modelgate.io/")},
        "digest": (meta.get("annotations") or {}).get(ANNOTATION_DIGEST),
    }
    if obj.get("kind") == "Service":
        out["selector"] = spec.get("selector")
        out["ports"] = [(p.get("port"), str(p.get("targetPort"))) for p in spec.get("ports") or []]
        return out
    tmpl = (spec.get("template") or {}).get("metadata") or {}
    containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
    out["replicas"] = spec.get("replicas", 1)
    out["podLabels"] = {k: v for k, v in (tmpl.get("labels") or {}).items() if k.startswith("modelgate.io/")}
    out["containers"] = [
        {
            "name": c.get("name"),
            "image": c.get("image"),
            "env": [(e.get("name"), e.get("value", "")) for e in c.get("env") or []],
            "ports": [p.get("containerPort") for p in c.get("ports") or []],
            "resources": _quantities(c.get("resources") or {}),
        }
        for c in containers
    ]
    return out


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
