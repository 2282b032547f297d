"""`modelgate history NAME`: the decisions the operator took about one model, oldest first
(status.history: bounded, see `modelgate report` for the whole trail with evidence and Events)."""

from __future__ import annotations

import argparse
from typing import TextIO

from modelgate.cli.kube import Session
from modelgate.cli.output import dump, table
from modelgate.cli.status import get_model


def history(session: Session, args: argparse.Namespace, out: TextIO) -> int:
    md = get_model(session, args.name)
    entries = (md.get("status") or {}).get("history") or []
    if args.output in ("json", "yaml"):
        dump(entries, args.output, out)
        return 0
    if not entries:
        out.write(f"ModelDeployment {session.namespace}/{args.name} has no decisions yet.\n")
        return 0
    wide = args.output == "wide"
    rows = [
        (
            "TIME",
            "ACTION",
            "REASON",
            "VERSION",
            "DIGEST",
            *(("DECISION", "SEALED BY") if wide else ()),
            "MESSAGE",
        )
    ]
    for h in entries:
        rev = h.get("revision") or {}
        rows.append(
            (
                str(h.get("time", "")),
                str(h.get("action", "")),
                str(h.get("reason", "")),
                str(rev.get("version", "-")),
                str(rev.get("digest", "-"))[:19],
                *(
                    (str(h.get("decision", "-")), str((h.get("seal") or {}).get("keyId", "-")))
                    if wide
                    else ()
                ),
                str(h.get("message", "")),
            )
        )
    dropped = int((md.get("status") or {}).get("historyDropped") or 0)
    if dropped:
        out.write(
            f"{dropped} older decision(s) left status.history (kept at 50); each is in the operator's audit "
            "log, signed (docs/auditors.md)\n"
        )
    table(rows, out)
    if wide:
        out.write("Each entry is sealed by key " + ", ".join(sorted(_keys(entries)) or ["(none)"]) + "\n")
    return 0


def _keys(entries: list[dict[str, object]]) -> set[str]:
    return {
        str(seal["keyId"]) for h in entries if isinstance(seal := h.get("seal"), dict) and seal.get("keyId")
    }
