"""`modelgate verify FILE --trust TRUST.json`: check an evidence bundle offline.

    modelgate keys export-trust > trust.json          # once, from the cluster (the auditor role may)
    modelgate verify fraud-detector.json --trust trust.json

Reads only the two files: no kubeconfig, no network. Exit 0 when every seal holds, with a short
statement of what the bundle proves; 1 naming each broken item; 2 when a file cannot be used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TextIO

from modelgate.decide import seal
from modelgate.decide import verify as check

PROVES = (
    "Proven: the operator holding these keys sealed this document as it is, and each approval and "
    "evaluation above passed its admission webhook as the identity shown, bound to that object's uid."
)
DOES_NOT_PROVE = (
    "Not proven: that the bundle lists every object the cluster ever held, that the reviewers were "
    "right, or anything the cluster did after the bundle was made."
)


class InputError(ValueError):
    """A file that cannot be used; the message names it and says why."""


def _read_json(path: str, what: str, hint: str) -> Any:
    p = Path(path)
    if not p.exists():
        raise InputError(f"{what} {path} does not exist{hint}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {what} {path}: {getattr(e, 'strerror', None) or e}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{what} {path} is not JSON (line {e.lineno} column {e.colno}: {e.msg})") from None


def load_trust(path: str) -> seal.Trust:
    doc = _read_json(path, "trust file", ": get it with `modelgate keys export-trust > trust.json`")
    try:
        trust = seal.Trust.from_json(doc)
    except seal.SealError as e:
        raise InputError(f"trust file {path}: {e}") from None
    if not trust.keys:
        raise InputError(f"trust file {path} lists no key")
    return trust


def run(doc: Any, trust: seal.Trust) -> tuple[bool, list[str]]:
    """(whether the bundle verifies, the lines to print): in-process, for tests and the command."""
    try:
        result = check.verify(doc, trust)
    except check.BundleError as e:
        return False, [f"not an evidence bundle: {e}"]
    if not result.ok:
        return False, [f"BROKEN {b}" for b in result.broken]
    return True, [*check.statement(doc, result), *(f"  note: {n}" for n in result.notes)]


def verify(path: str, trust_path: str, out: TextIO, err: TextIO) -> int:
    try:
        trust = load_trust(trust_path)
        doc = _read_json(path, "bundle", "")
    except InputError as e:
        err.write(f"modelgate verify: {e}\n")
        return 2
    ok, lines = run(doc, trust)
    if not ok:
        err.write(f"modelgate verify: {path} does not verify against {trust_path}:\n")
        err.write("".join(f"  {line}\n" for line in lines))
        return 1
    out.write(f"VERIFIED {path}: every seal holds against {trust_path}\n")
    out.write("".join(f"{line}\n" for line in lines))
    out.write(f"{PROVES}\n{DOES_NOT_PROVE}\n")
    return 0
