"""Types shared by every modelgate.io/v1alpha1 kind.

The pydantic models in this package are the single source of truth for the API: the CRDs in crds/
are generated from them (see modelgate.api.crdgen), so every constraint written here is enforced
twice, by the kube-apiserver (OpenAPI schema and CEL rules) and by pydantic when the operator parses
an object. Rules the OpenAPI schema cannot express are written once as CEL (attached to the model
through json_schema_extra) and mirrored by a pydantic validator, so both layers agree.

Every string, list and map carries an upper bound. The kube-apiserver estimates the worst-case cost
of each CEL rule from those bounds and rejects a CRD whose rules could exceed its budget; unbounded
fields make even `self == oldSelf` too expensive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Annotated, Any, Final, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.config import JsonDict

GROUP: Final = "modelgate.io"
VERSION: Final = "v1alpha1"
API_VERSION: Final = "modelgate.io/v1alpha1"  # f"{GROUP}/{VERSION}", spelled out for its Literal type
CATEGORIES: Final = ("modelgate",)
FINALIZER: Final = "modelgate.io/finalizer"
"""Holds a ModelDeployment until its serving objects are removed and its retirement recorded."""

DIGEST_PATTERN: Final = r"^sha256:[0-9a-f]{64}$"
DURATION_PATTERN: Final = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h|d))+$"
REASON_PATTERN: Final = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
DNS_SUBDOMAIN_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE_PATTERN: Final = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
CONDITION_TYPE_PATTERN: Final = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
# The pattern controller-gen emits for resource.Quantity; it applies to the string form only.
QUANTITY_PATTERN: Final = (
    r"^(\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|"
    r"([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)

# Bounds: names follow Kubernetes (253 for object names, 63 for label values); free text and
# URIs get 4096, enough for any real value and small enough for the CEL cost estimator.
MAX_TEXT: Final = 4096
MAX_LIST: Final = 64

ObjectName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
LabelValue = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)]
Digest = Annotated[str, StringConstraints(max_length=71, pattern=DIGEST_PATTERN)]
Duration = Annotated[str, StringConstraints(max_length=64, pattern=DURATION_PATTERN)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=REASON_PATTERN)]
Uri = Annotated[str, StringConstraints(min_length=1, max_length=MAX_TEXT)]
Text = Annotated[str, StringConstraints(max_length=MAX_TEXT)]
Token = Annotated[str, StringConstraints(min_length=1, max_length=253)]
Quantity = StrictInt | Annotated[str, StringConstraints(max_length=64, pattern=QUANTITY_PATTERN)]
"""A resource quantity: an integer or a string like 500m; not a boolean (pydantic alone reads True as 1)."""

RiskLevel = Literal["minimal", "limited", "high"]
RevisionId = Annotated[str, StringConstraints(min_length=32, max_length=32, pattern=r"^[0-9a-f]{32}$")]
"""A revision id: 32 lowercase hex digits (modelgate.decide.revision)."""
DecisionId = Annotated[str, StringConstraints(min_length=16, max_length=16, pattern=r"^[0-9a-f]{16}$")]
"""A decision's id (decide/ids.py): the same in its history entry, Event name, audit line and record entry."""
CardField = Literal["owner", "intendedUse", "limitations", "trainingData", "riskLevel"]


class ApiModel(BaseModel):
    """Base of every modelgate.io model: snake_case in Python, camelCase on the wire."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        populate_by_name=True,
        alias_generator=to_camel,
        extra="forbid",
    )


def cel(rule: str, message: str, *, field_path: str | None = None, reason: str | None = None) -> JsonDict:
    """One x-kubernetes-validations entry."""
    entry: JsonDict = {"rule": rule, "message": message}
    if field_path is not None:
        entry["fieldPath"] = field_path
    if reason is not None:
        entry["reason"] = reason
    return entry


def list_map(*keys: str) -> JsonDict:
    """Schema markers for a list whose items are unique by keys (merged per item by server-side apply)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}


LIST_SET: Final[JsonDict] = {"x-kubernetes-list-type": "set"}

THRESHOLD_RULE: Final = cel(
    "!has(self.min) || !has(self.max) || self.min <= self.max",
    "min must be less than or equal to max",
    field_path=".min",
)


def check_thresholds(low: float | None, high: float | None) -> None:
    """Pydantic mirror of THRESHOLD_RULE."""
    if low is not None and high is not None and low > high:
        raise ValueError(f"min must be less than or equal to max (min={low}, max={high})")


def check_unique(values: Iterable[str], what: str) -> None:
    """Pydantic mirror of a list map: the apiserver rejects duplicate keys."""
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise ValueError(f"duplicate {what} {value!r}")
        seen.add(value)


def _distinct(values: list[str]) -> list[str]:
    check_unique(values, "list item")
    return values


DISTINCT: Final = AfterValidator(_distinct)
"""Pydantic mirror of LIST_SET, for `Annotated[list[...], DISTINCT]`: the apiserver rejects a
repeated item of a list set."""

_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h|d)")
_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


MAX_DURATION: Final = timedelta(days=36500)
"""Durations saturate at 100 years. The pattern bounds the text, not the value: `maxAge: 9999999d`
is schema-valid, and a timedelta that large (or a time that far from now) overflows, which made
every decision of every model such a policy selects raise. A hundred years is "forever" here."""


def parse_duration(text: str) -> timedelta:
    """Turn a duration such as "30s", "1h30m" or "30d" (DURATION_PATTERN) into a timedelta, at most
    MAX_DURATION."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"invalid duration {text!r}: want a sequence of <number><ms|s|m|h|d>")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    return timedelta(seconds=min(seconds, MAX_DURATION.total_seconds()))


KeyId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class SealCovers(ApiModel):
    """The object a seal belongs to: a seal copied onto another object names the wrong one."""

    kind: Annotated[str, StringConstraints(max_length=63)]
    """Kind of the sealed object."""
    namespace: Annotated[str, StringConstraints(max_length=63)]
    """Namespace of the sealed object."""
    name: Annotated[str, StringConstraints(max_length=253)] | None = None
    """Name of the sealed object."""
    uid: Annotated[str, StringConstraints(max_length=128)] | None = None
    """UID of the sealed object."""


class Seal(ApiModel):
    """An Ed25519 signature by one of the operator's keys over what it covers and the spec without
    spec.seal, in canonical JSON. Check it with `modelgate verify` and the trust file."""

    algorithm: Literal["Ed25519"]
    """Signature algorithm: Ed25519."""
    key_id: KeyId
    """Id of the signing key: the first 16 hex digits of the SHA-256 of its public key, as listed
    in the ConfigMap modelgate-trust."""
    signed_at: AwareDatetime
    """When the seal was made."""
    covers: SealCovers
    """The object the seal belongs to."""
    signature: Annotated[str, StringConstraints(max_length=128)]
    """The signature, base64."""


class Identity(ApiModel):
    """A Kubernetes user as the API server authenticated it (the request's userInfo)."""

    username: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    """Name of the authenticated user, for example alice@example.com or
    system:serviceaccount:ci:deployer."""
    groups: list[Annotated[str, StringConstraints(max_length=512)]] = Field(
        default_factory=list, max_length=256
    )
    """Groups the user belonged to when the request was made, as reported by the authenticator."""
    uid: Annotated[str, StringConstraints(max_length=128)] | None = None
    """Unique identifier of the user, when the authenticator provides one."""


class ModelRef(ApiModel):
    """Binds evidence (an approval or an evaluation) to one exact model artifact."""

    name: LabelValue
    """Name of the model, as in spec.model.name of the ModelDeployment that uses this evidence."""
    version: LabelValue
    """Version of the model, as in spec.model.version of the ModelDeployment."""
    digest: Digest
    """Content digest of the artifact this evidence is about: "sha256:" followed by 64 lowercase hex
    digits. Evidence counts only for a ModelDeployment whose spec.model.digest is identical."""
    revision: RevisionId | None = None
    """The revision this evidence covers: the id of the model artifact, its uri, the serving image
    and every serving field the policies do not list as operational (see `modelgate revision`).
    When absent at creation, the admission webhook fills it in from the ModelDeployment in the
    namespace that requests this model name, version and digest. Evidence counts only for the
    revision it names."""


class LocalObjectReference(ApiModel):
    """A reference to another object in the same namespace."""

    name: ObjectName
    """Name of the referenced object."""


class Condition(ApiModel):
    """One aspect of the object's current state, in the shape of metav1.Condition."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """Type of condition in CamelCase: Approved, Evaluated, Admitted, Ready, Drifted, Quarantined, and
    kstatus' Reconciling and Stalled (present only while True); Valid on a GovernancePolicy."""
    status: Literal["True", "False", "Unknown"]
    """Status of the condition: True, False or Unknown."""
    observed_generation: int | None = Field(None, ge=0)
    """The metadata.generation the condition was computed from. A condition whose
    observedGeneration is older than metadata.generation is out of date."""
    last_transition_time: AwareDatetime
    """When the condition last changed status (it does not move when only the message changes)."""
    reason: Reason
    """Machine-readable CamelCase reason for the last transition, for example NoPolicy or
    ApprovalMissing."""
    message: Annotated[str, StringConstraints(max_length=32768)]
    """Human-readable explanation naming exactly what is missing or wrong; may be empty."""


class LabelSelectorRequirement(ApiModel):
    """A label key, an operator and (for In and NotIn) a set of values."""

    model_config = ConfigDict(
        json_schema_extra={
            "x-kubernetes-validations": [
                cel(
                    "self.operator in ['In', 'NotIn'] ? (has(self.values) && size(self.values) > 0)"
                    " : (!has(self.values) || size(self.values) == 0)",
                    "values must be non-empty for operator In and NotIn, and empty for Exists and "
                    "DoesNotExist",
                )
            ]
        }
    )

    key: Annotated[str, StringConstraints(min_length=1, max_length=317)]
    """The label key the selector applies to."""
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    """How the key relates to the values: In, NotIn, Exists or DoesNotExist."""
    values: list[Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=list, max_length=MAX_LIST
    )
    """Label values; non-empty for In and NotIn, empty for Exists and DoesNotExist."""

    @model_validator(mode="after")
    def _values_match_operator(self) -> LabelSelectorRequirement:
        if self.operator in ("In", "NotIn") and not self.values:
            raise ValueError(f"values must be non-empty for operator {self.operator}")
        if self.operator in ("Exists", "DoesNotExist") and self.values:
            raise ValueError(f"values must be empty for operator {self.operator}")
        return self


class LabelSelector(ApiModel):
    """A Kubernetes label selector; all of matchLabels and matchExpressions must hold."""

    match_labels: dict[str, Annotated[str, StringConstraints(max_length=63)]] = Field(
        default_factory=dict, max_length=MAX_LIST
    )
    """Labels that must be present with exactly these values."""
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list, max_length=MAX_LIST)
    """Label requirements that must all be satisfied."""

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a set of labels satisfies the selector; an empty selector matches everything."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
            if req.operator == "In" and labels.get(req.key) not in req.values:
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
        return True


@dataclass(frozen=True)
class PrinterColumn:
    """One `kubectl get` column (additionalPrinterColumns entry)."""

    name: str
    type: Literal["string", "integer", "number", "boolean", "date"]
    json_path: str
    description: str
    priority: int = 0


@dataclass(frozen=True)
class ResourceInfo:
    """How a kind is served: the names the CRD registers and its printer columns."""

    kind: str
    plural: str
    short_names: tuple[str, ...]
    scope: Literal["Namespaced", "Cluster"]
    printer_columns: tuple[PrinterColumn, ...] = field(default=())

    @property
    def singular(self) -> str:
        return self.kind.lower()

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"

    @property
    def namespaced(self) -> bool:
        return self.scope == "Namespaced"


AGE_COLUMN: Final = PrinterColumn(
    "Age", "date", ".metadata.creationTimestamp", "Time since the object was created."
)


class KubeObject(ApiModel):
    """Fields every top-level object has; subclasses add kind, spec and (optionally) status."""

    api_version: Literal["modelgate.io/v1alpha1"] = API_VERSION
    """APIVersion of the object: modelgate.io/v1alpha1."""
    kind: str
    """Kind of the object; each subclass narrows it to its own kind."""
    metadata: dict[str, Any] = Field(default_factory=dict)
    """Standard Kubernetes object metadata (name, namespace, labels, annotations, ...)."""

    @property
    def name(self) -> str:
        return str(self.metadata.get("name", ""))

    @property
    def namespace(self) -> str | None:
        namespace = self.metadata.get("namespace")
        return None if namespace is None else str(namespace)
