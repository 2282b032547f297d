"""The seal on approvals and evaluations: an HMAC over what the admission webhook stamped.

The webhook computes the seal when it stamps the requester's identity on a ModelApproval or
ModelEvaluation; the gate engine counts only records whose seal verifies. A record created while
the webhook was bypassed (removed, or written by someone with direct etcd access) has no valid
seal, so it never counts. The payload is the kind, the namespace and the whole spec except the seal
itself, in canonical JSON (sorted keys, no spaces), as the API server stores it. The object's
name is not sealed: with generateName it is not known yet when mutating webhooks run.

Pure: the key is passed in (the operator keeps it in a Secret).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any, Final

PREFIX: Final = "hmac-sha256:"


def payload(kind: str, namespace: str, spec: Mapping[str, Any]) -> bytes:
    body = {"kind": kind, "namespace": namespace, "spec": {k: v for k, v in spec.items() if k != "seal"}}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def compute(key: bytes, kind: str, namespace: str, spec: Mapping[str, Any]) -> str:
    return PREFIX + hmac.new(key, payload(kind, namespace, spec), hashlib.sha256).hexdigest()


def verify(key: bytes, kind: str, namespace: str, spec: Mapping[str, Any]) -> bool:
    seal = spec.get("seal")
    if not isinstance(seal, str) or not seal.startswith(PREFIX):
        return False
    return hmac.compare_digest(seal, compute(key, kind, namespace, spec))
