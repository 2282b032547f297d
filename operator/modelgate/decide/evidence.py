"""What the gate engine shares between approvals and evaluations: the context a piece of evidence is
judged in, the verdict on one requirement, and the checks that apply to both kinds.

Evidence (a ModelApproval or a ModelEvaluation) counts for a requirement only when it passes an
ordered chain of small named checks. Each check returns a `Miss` (a reason and a message naming
exactly why that object does not count) or None. The position of the first failing check is the
miss's depth: evidence that failed late in the chain came closest to counting, so when a requirement
is unmet its reason is taken from the closest miss (an approval that merely expired explains the
failure better than one for another digest). Messages list every miss, in name order.

The chain binds evidence to the revision being judged: model name and version, digest, and the
revision id (`spec.model.revision`, decide/revision.py) that covers the URI, the serving image and
every serving field the policies do not list as operational. Evidence without a revision does not
count; the message says which id to name and how to get it.

Everything here is pure: time is `Context.now`, never a clock read, and the seal is verified by a
callable the caller injects.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final, TypeVar

from modelgate.api import conditions as r
from modelgate.api.v1alpha1 import Approvers, ModelApproval, ModelEvaluation, ModelRef

Evidence = ModelApproval | ModelEvaluation
SealCheck = Callable[[Evidence], bool]

MAX_MESSAGE: Final = 4096
"""status.gates[].message is bounded by the CRD; longer messages are cut, never rejected."""
CLOCK_SKEW: Final = timedelta(minutes=5)
"""Evidence dated further in the future than this is not believed (clocks disagree by less)."""

E = TypeVar("E", ModelApproval, ModelEvaluation)
R = TypeVar("R")


@dataclass(frozen=True)
class Context:
    """The deployment-wide facts every piece of evidence is judged against."""

    model: str
    version: str
    digest: str
    namespace: str
    now: datetime
    revision: str = ""
    """The id of the revision being judged (decide/revision.py): evidence counts only for it."""
    not_before: datetime | None = None
    seal_ok: SealCheck | None = None
    separation: bool = False
    """Whether any policy in force demands separation of duties."""
    digest_set_by: str | None = None
    """Username that last set spec.model.digest (spec.digestSetBy), when known."""
    risk_level: str = ""
    """The model card's riskLevel."""
    confirming_roles: frozenset[str] = frozenset()
    """Roles whose approvals count only when they confirm the card's riskLevel (riskLevelConfirmation)."""
    evaluators: Approvers | None = None
    """Who may submit evaluations that count for the policy being checked; None: anyone."""

    @property
    def subject(self) -> str:
        """The exact revision evidence must name, for messages:
        "fraud-detector 1.0.0 sha256:abcdef… revision 0123…" (the full id: approvers copy it)."""
        return f"{self.model} {self.version} {short_digest(self.digest)} revision {self.revision}"


@dataclass(frozen=True)
class Miss:
    """Why one piece of evidence does not count for a requirement."""

    reason: str
    message: str


@dataclass(frozen=True)
class Outcome:
    """The verdict on one requirement, before the engine turns it into a Gate."""

    satisfied: bool
    reason: str
    message: str
    counted: tuple[str, ...] = ()
    """Names of the evidence the verdict rests on."""
    changes_at: tuple[datetime, ...] = ()
    """Instants at which the verdict may change by itself (evidence expiring or becoming valid)."""


Check = Callable[[E, R, Context], Miss | None]


def first_miss(
    chain: Sequence[Check[E, R]], evidence: E, requirement: R, ctx: Context, start: int = 0
) -> tuple[int, Miss] | None:
    """Run the checks in order; the first miss and its depth (`start` + its position), or None."""
    for depth, check in enumerate(chain, start):
        miss = check(evidence, requirement, ctx)
        if miss is not None:
            return depth, miss
    return None


def closest_reason(misses: Iterable[tuple[int, Miss]], default: str) -> str:
    """The reason of the miss that came closest to counting (deepest; first on a tie), or `default`."""
    best: tuple[int, Miss] | None = None
    for depth, miss in misses:
        if best is None or depth > best[0]:
            best = (depth, miss)
    return default if best is None else best[1].reason


def not_counted(misses: Iterable[tuple[int, Miss]]) -> str:
    """A message suffix listing why each near miss did not count; empty when there were none."""
    texts = [miss.message for _, miss in misses]
    return f"; not counted: {'; '.join(texts)}" if texts else ""


# --- checks shared by approvals and evaluations ---------------------------------------------------


def bound_to_model(evidence: Evidence, _: object, ctx: Context) -> Miss | None:
    """Evidence names the deployment's model name and version."""
    ref = evidence.spec.model
    if (ref.name, ref.version) == (ctx.model, ctx.version):
        return None
    return Miss(
        r.MODEL_MISMATCH,
        f"{evidence.kind} {evidence.name} is for model {ref.name} {ref.version} "
        f"not {ctx.model} {ctx.version}",
    )


def bound_to_digest(evidence: Evidence, _: object, ctx: Context) -> Miss | None:
    """Evidence names the deployment's exact digest."""
    if is_bound(evidence.spec.model, ctx):
        return None
    return Miss(
        r.DIGEST_MISMATCH,
        f"{evidence.kind} {evidence.name} is for {short_digest(evidence.spec.model.digest)} "
        f"not {short_digest(ctx.digest)}",
    )


def bound_to_revision(evidence: Evidence, _: object, ctx: Context) -> Miss | None:
    """Evidence names the exact revision being judged (spec.model.revision): the model artifact, its
    uri, the serving image and every covered serving field. Evidence without one does not count."""
    named = evidence.spec.model.revision
    if named == ctx.revision:
        return None
    if named is None:
        return Miss(
            r.REVISION_MISSING,
            f"{evidence.kind} {evidence.name} names no revision (spec.model.revision); create it again "
            f"with revision {ctx.revision} (`modelgate revision -f <modeldeployment.yaml>` prints it, "
            "and the admission webhook fills it in when the ModelDeployment exists)",
        )
    return Miss(
        r.REVISION_MISMATCH,
        f"{evidence.kind} {evidence.name} is for revision {named} not {ctx.revision} "
        "(the model uri, the serving image or another covered serving field differs)",
    )


def sealed(evidence: Evidence, _: object, ctx: Context) -> Miss | None:
    """When sealing is enforced, the webhook's seal verifies (an error verifying it fails closed)."""
    if ctx.seal_ok is None:
        return None
    try:
        ok = ctx.seal_ok(evidence)
    except Exception as err:  # fail closed: evidence we cannot verify does not count
        return Miss(
            r.SEAL_INVALID,
            f"{evidence.kind} {evidence.name} has a seal that could not be verified ({type(err).__name__})",
        )
    if ok:
        return None
    if not evidence.spec.seal:
        return Miss(
            r.UNSEALED,
            f"{evidence.kind} {evidence.name} is unsealed: it was written past the modelgate admission "
            "webhook (its configuration removed?), so who wrote it is unknown",
        )
    return Miss(
        r.SEAL_INVALID,
        f"{evidence.kind} {evidence.name} has an invalid seal (altered after the modelgate admission "
        "webhook sealed it, or sealed with another key)",
    )


def is_bound(ref: ModelRef, ctx: Context) -> bool:
    """Whether evidence names exactly the deployment's model name, version and digest."""
    return (ref.name, ref.version, ref.digest) == (ctx.model, ctx.version, ctx.digest)


# --- formatting -----------------------------------------------------------------------------------


def short_digest(digest: str) -> str:
    """sha256:abcdef123456… (algorithm and the first 12 hex digits), enough to tell digests apart."""
    algorithm, _, hexdigits = digest.partition(":")
    if not hexdigits:
        return digest
    return f"{algorithm}:{hexdigits[:12]}…" if len(hexdigits) > 12 else digest


def timestamp(t: datetime) -> str:
    """RFC 3339 in UTC, to the second: 2026-11-20T09:30:00Z."""
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def plural(word: str, items: Sequence[str]) -> str:
    """ "policy a" or "policies a, b"."""
    if len(items) == 1:
        return f"{word} {items[0]}"
    many = word[:-1] + "ies" if word.endswith("y") else word + "s"
    return f"{many} {', '.join(items)}"


def clip(text: str, limit: int = MAX_MESSAGE) -> str:
    """Cut text to `limit` characters, marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def require_aware(t: datetime, what: str) -> datetime:
    """Reject naive datetimes: comparing them with the API's aware timestamps would be wrong."""
    if t.tzinfo is None or t.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got {t.isoformat()}")
    return t


def created_at(obj: Evidence) -> datetime | None:
    """metadata.creationTimestamp as an aware datetime; None when absent or unparseable."""
    raw = obj.metadata.get("creationTimestamp")
    if isinstance(raw, datetime):
        value = raw
    elif isinstance(raw, str):
        try:
            value = datetime.fromisoformat(raw)
        except ValueError:
            return None
    else:
        return None
    return value if value.tzinfo is not None and value.utcoffset() is not None else None
