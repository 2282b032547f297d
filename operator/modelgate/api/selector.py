"""Which ModelDeployments a shard of the operator claims: a Kubernetes label selector, parsed and
matched without I/O (Kubernetes API vocabulary, below `config`, which validates the flag with it).

`modelgate run --selector` takes the selector syntax of `kubectl get -l`: requirements separated
by commas, all of which must hold: `key=value` (or `==`), `key!=value`, `key in (a,b)`,
`key notin (a,b)`, `key` (present), `!key` (absent). As in Kubernetes, `!=` and `notin` also
match an object without the key, so `modelgate.io/shard!=a` claims the unlabelled models too.

The selector decides only which models a shard reconciles, monitors and writes for. Evidence,
policies and templates are read by every shard, and an instance that serves the admission webhooks
indexes every ModelDeployment whatever its selector (docs/sharding.md).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass

SHARD_LABEL = "modelgate.io/shard"
"""The label the documented convention shards on (docs/sharding.md); any label works."""

_NAME = r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_PREFIX = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
KEY = re.compile(rf"^({_PREFIX}/)?{_NAME}$")
VALUE = re.compile(rf"^({_NAME})?$")
_SET = re.compile(r"^(?P<key>\S+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)$")
_EQ = re.compile(r"^(?P<key>[^=!\s]+)\s*(?P<op>==|=|!=)\s*(?P<value>\S*)$")


class SelectorError(ValueError):
    """The selector cannot be read; the message says which requirement and why."""


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str
    """One of in, notin, exists, absent (= and == are `in` one value, != is `notin`)."""
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "absent":
            return self.key not in labels
        if self.op == "in":
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values


@dataclass(frozen=True)
class Selector:
    text: str
    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Every requirement holds for these labels (an empty selector matches everything)."""
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)


def _split(text: str) -> list[str]:
    """The requirements: commas separate them, except inside a value set's parentheses."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    parts.append(current.strip())
    return parts


def _key(key: str, part: str) -> str:
    if not KEY.match(key):
        raise SelectorError(
            f"{part!r}: {key!r} is not a label key (an optional DNS prefix and '/', then a name)"
        )
    return key


def _value(value: str, part: str) -> str:
    if not VALUE.match(value):
        raise SelectorError(
            f"{part!r}: {value!r} is not a label value (up to 63 letters, digits, '-', '_', '.')"
        )
    return value


def _requirement(part: str) -> Requirement:
    if not part:
        raise SelectorError("an empty requirement (two commas in a row, or one at an end)")
    if m := _SET.match(part):
        values = [v.strip() for v in m["values"].split(",")]
        if values == [""]:
            raise SelectorError(f"{part!r}: a value set needs at least one value")
        return Requirement(_key(m["key"], part), m["op"], frozenset(_value(v, part) for v in values))
    if m := _EQ.match(part):
        op = "notin" if m["op"] == "!=" else "in"
        return Requirement(_key(m["key"], part), op, frozenset({_value(m["value"], part)}))
    if part.startswith("!"):
        return Requirement(_key(part[1:].strip(), part), "absent")
    if re.search(r"[\s=!()<>]", part):
        raise SelectorError(
            f"{part!r}: expected key=value, key!=value, key in (a,b), key notin (a,b), key or !key"
        )
    return Requirement(_key(part, part), "exists")


@functools.lru_cache(maxsize=16)
def parse(text: str) -> Selector:
    """The selector of `text`; raises SelectorError naming the requirement it cannot read. Cached:
    a shard matches its one selector against every ModelDeployment event."""
    if not text.strip():
        raise SelectorError("an empty selector: omit --selector to claim every ModelDeployment")
    if text.count("(") != text.count(")"):
        raise SelectorError(f"{text!r}: unbalanced parentheses")
    return Selector(text, tuple(_requirement(p) for p in _split(text)))


def claims(selector: str | None, labels: Mapping[str, str] | None) -> bool:
    """A shard with this --selector (None: every model) reconciles a ModelDeployment with these labels."""
    return selector is None or parse(selector).matches(labels)


def cluster_duties(selector: str | None) -> bool:
    """A shard with this --selector seals evidence, ends retentions and writes GovernancePolicy
    statuses: the writes that belong to no one ModelDeployment. The shard that claims unlabelled
    ModelDeployments has them (no --selector, or one like `!modelgate.io/shard`), so that two
    selector shards never both write them (docs/sharding.md)."""
    return claims(selector, {})


def problem(selector: str | None) -> str | None:
    """What is wrong with the --selector flag, as the line `modelgate run` prints; None if nothing."""
    if selector is None:
        return None
    try:
        parse(selector)
    except SelectorError as e:
        return f"--selector: {e}"
    return None
