"""`-o json|yaml`: objects printed the way kubectl prints them (one object, or a v1 List)."""

from __future__ import annotations

import json
from typing import Any, TextIO

import yaml

FORMATS = ("json", "yaml")


def dump(data: Any, fmt: str, out: TextIO) -> None:
    if fmt == "yaml":
        out.write(yaml.safe_dump(data, sort_keys=False, default_flow_style=False))
    else:
        out.write(json.dumps(data, indent=2, default=str) + "\n")


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    """kubectl's shape for several objects."""
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def table(rows: list[tuple[str, ...]], out: TextIO) -> None:
    """Columns padded to their widest cell, two spaces apart, as kubectl prints them."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        out.write("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() + "\n")
