"""What the indexes hold per object, kept small: the operator holds every watched object for as long as
it exists, so at 10,000 models the per-object size is most of its memory.

A trimmed ModelDeployment is 4.7 KB of JSON and 19 KB as Python dicts and strings; an owned
Deployment's essentials 2.2 KB and 11.5 KB. `Packed` keeps the compact JSON bytes and decodes them on
the pass that reads them (tens of microseconds, against milliseconds for the pass). `fingerprint`
stands in for a value that is only ever compared.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["Packed", "fingerprint", "unpacked"]


def _encode(value: Any, *, canonical: bool = False) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=canonical).encode()


@dataclass(frozen=True, slots=True)
class Packed:
    """A JSON object held as compact UTF-8 bytes (keys in their order: it decodes as it was)."""

    data: bytes

    @classmethod
    def of(cls, value: Mapping[str, Any]) -> Packed:
        return cls(_encode(value))

    def unpack(self) -> dict[str, Any]:
        """A fresh copy each time: a reader may change it without touching the index."""
        out: dict[str, Any] = json.loads(self.data)
        return out


def unpacked(value: Any) -> Any:
    """An index value as its readers use it: a Packed one decoded, anything else (None, a value an
    index keeps unpacked) as it is."""
    return value.unpack() if isinstance(value, Packed) else value


def fingerprint(value: Any) -> bytes:
    """16 bytes that differ whenever the JSON value does (BLAKE2b of its canonical form)."""
    return hashlib.blake2b(_encode(value, canonical=True), digest_size=16).digest()
