"""`modelgate report -n NS NAME --bundle FILE`: the evidence bundle of one model (decide/bundle.py),
signed with the operator's current key, for `modelgate verify` to check offline.

The bundle is signed as the operator would sign it, so the command reads the operator's private
keys (Secret modelgate-signing-keys in the operator's namespace): an admin of that namespace may.
Anyone else gets one line saying so; every deleted model's final bundle is in the audit log anyway.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, TextIO

from kubernetes.client.exceptions import ApiException

from modelgate.act import keys
from modelgate.cli.kube import CliError, Session
from modelgate.decide import bundle
from modelgate.decide.seal import SealError, Signer
from modelgate.observe.bundle import gather

MADE_BY = "modelgate report --bundle"


class BundleCommandError(RuntimeError):
    """The bundle cannot be made; the message says why, for people."""


def _message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "{}").get("message") or e.reason)
    except (ValueError, AttributeError):
        return str(e.reason)


def _said(e: Exception, path: str) -> str:
    """One line for people about what stopped the bundle."""
    if isinstance(e, ApiException):
        return f"the API server answered {e.status} {e.reason}: {_message(e)}"
    if isinstance(e, OSError):
        return f"cannot write {path}: {e.strerror or e}"
    return str(e)


def current_signer(client: Any, operator_namespace: str) -> Signer:
    """The key new seals use, from the operator's Secret (an admin's read)."""
    where = f"Secret {operator_namespace}/{keys.SECRET}"
    try:
        held = keys.read(client, operator_namespace)
    except ApiException as e:
        if e.status == 403:
            raise BundleCommandError(
                f"forbidden to read {where} ({_message(e)}): a bundle is signed with the operator's "
                f"current key, which only an admin of namespace {operator_namespace} may read (get on "
                "that Secret). Ask one to run this command; the final bundle of every deleted model "
                "is in the operator's audit log"
            ) from None
        raise
    if held.signer is None:
        raise BundleCommandError(
            f"{where} holds no active signing key: is the operator installed in {operator_namespace} "
            "(--operator-namespace)?"
        )
    return held.signer


def write_bundle(session: Session, name: str | None, path: str, operator_namespace: str, out: TextIO) -> int:
    namespace = session.namespace
    try:
        if not name:
            raise BundleCommandError(
                "--bundle needs one ModelDeployment: modelgate report -n NS NAME --bundle FILE"
            )
        signer = current_signer(session.api, operator_namespace)
        now = dt.datetime.now(dt.UTC)
        doc = bundle.sign(signer, gather(session.api, namespace, name, now, MADE_BY), now)
        Path(path).write_text(json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
    except (BundleCommandError, LookupError, SealError, ApiException, OSError) as e:
        raise CliError(f"report: {_said(e, path)}") from e
    out.write(
        f"wrote the evidence bundle of ModelDeployment {namespace}/{name} to {path}: "
        f"{len(doc['evidence'])} approvals and evaluations, {len(doc['history']['records'])} decision "
        f"records, {len(doc['policies'])} policies; sealed with key {doc['seal']['keyId']}\n"
    )
    return 0
