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
    rows = [("TIME", "ACTION", "REASON", "VERSION", "DIGEST", *(("DECISION",) if wide else ()), "MESSAGE")]
    for h in entries:
        rev = h.get("revision") or {}
        rows.append(
            (
                str(h.get("time", "")),
                str(h.get("action", "")),
                str(h.get("reason", "")),
                str(rev.get("version", "-")),
                str(rev.get("digest", "-"))[:19],
                *((str(h.get("decision", "-")),) if wide else ()),
                str(h.get("message", "")),
            )
        )
    table(rows, out)
    return 0
