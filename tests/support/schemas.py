"""Hypothesis strategies read from the CRD schemas in crds/: valid manifests, and invalid ones that
say which field breaks which rule.

crds/ is generated from the pydantic models (modelgate.api.crdgen), so the schemas are read here,
never restated: a bound added to a model reaches these strategies with `make crds`. The walk knows
the structural OpenAPI subset crdgen emits (types, properties and required, items, maps through
additionalProperties, int-or-string, enum, pattern, lengths and counts, minimum/maximum, date-time,
list maps and sets) and the CEL rules (x-kubernetes-validations), which are evaluated with
cel-python on values typed as the API server types them (a `number` is a double even when written
as 1). Transition rules (those reading oldSelf) only apply to updates and are left to the tests
of updates.

- `valid(kind)`: manifests every rule of the schema accepts, CEL included.
- `invalid(kind)`: an `Invalid`, a manifest valid but for one `Violation` at a known place: a wrong
  type, a missing required field, a value out of range, a bad pattern, enum or date-time, a string
  or list too long or too short, a duplicate key in a list map, an unknown field (refused by the
  API server's strict field validation, pruned otherwise) or a broken CEL rule. `Violation.field`
  names the place the way the API server does (`spec.approvals[0].name`).
- `violations(kind)`: every such site of the schema, for tests that want each one once.

Sizes are kept small (lists of at most MAX_ITEMS, strings of at most MAX_TEXT characters) so that
examples are cheap; big input has its own tests.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import celpy  # type: ignore[import-untyped]
import yaml
from celpy import celtypes
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
CRDS = ROOT / "crds"

MAX_ITEMS = 3
MAX_TEXT = 24
UNKNOWN_FIELD = "fuzzUnknownField"

Schema = Mapping[str, Any]
Path_ = tuple[str | int, ...]

ITEM = "[]"
KEY = "{}"


@dataclass(frozen=True)
class Crd:
    kind: str
    plural: str
    group: str
    version: str
    namespaced: bool
    schema: Schema
    """The served version's openAPIV3Schema."""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


@functools.cache
def crds() -> dict[str, Crd]:
    """Every CRD in crds/, by kind."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        spec = doc["spec"]
        (version,) = [v for v in spec["versions"] if v.get("storage")]
        out[spec["names"]["kind"]] = Crd(
            kind=spec["names"]["kind"],
            plural=spec["names"]["plural"],
            group=spec["group"],
            version=version["name"],
            namespaced=spec["scope"] == "Namespaced",
            schema=version["schema"]["openAPIV3Schema"],
        )
    return out


# --- CEL, typed as the API server types values -----------------------------------------------------


def _rules(schema: Schema) -> list[Mapping[str, str]]:
    """The node's CEL rules that judge a value on its own (not transition rules)."""
    return [r for r in schema.get("x-kubernetes-validations", ()) if "oldSelf" not in r["rule"]]


_CEL = celpy.Environment()  # made at import: it raises the recursion limit, which hypothesis notices


@functools.cache
def _program(rule: str) -> Any:
    return _CEL.program(_CEL.compile(rule))


def cel_value(schema: Schema, value: Any) -> Any:
    """`value` as a CEL value of the schema's type."""
    kind = schema.get("type")
    if isinstance(value, bool) or kind == "boolean":
        return celtypes.BoolType(value)
    if kind == "object" and isinstance(value, Mapping):
        props = schema.get("properties") or {}
        extra = schema.get("additionalProperties")
        return celtypes.MapType(
            {celtypes.StringType(k): cel_value(props.get(k) or extra or {}, v) for k, v in value.items()}
        )
    if kind == "array" and isinstance(value, list):
        return celtypes.ListType([cel_value(schema.get("items") or {}, v) for v in value])
    if kind == "number" and isinstance(value, int | float):
        return celtypes.DoubleType(float(value))
    if isinstance(value, int):
        return celtypes.IntType(value)
    if isinstance(value, float):
        return celtypes.DoubleType(value)
    return celtypes.StringType(str(value))


def rule_holds(rule: str, schema: Schema, value: Any) -> bool:
    """Whether a CEL rule accepts `value`; an evaluation error is a refusal, as in the API server."""
    try:
        return bool(_program(rule).evaluate({"self": cel_value(schema, value)}))
    except Exception:  # celpy raises its own error types, and TypeError from overloads
        return False


def _literals(schema: Schema) -> tuple[str, ...]:
    """String literals in the node's CEL rules: values a rule singles out (reserved names, enum
    branches), offered to the string leaves below it so that breaking the rule is reachable."""
    found: set[str] = set()
    for rule in _rules(schema):
        found |= set(re.findall(r"'([^']*)'", rule["rule"]))
    return tuple(sorted(found))


# --- valid values ----------------------------------------------------------------------------------

_LABELISH = st.from_regex(r"[a-z][a-z0-9]{0,7}", fullmatch=True)
_CHARS = st.characters(exclude_categories=("Cs",))  # any Unicode the API server can store


def _datetimes() -> st.SearchStrategy[str]:
    """RFC 3339 date-times, in the spellings the schema's format admits (offsets, fractions,
    lower-case t and z)."""
    moments = st.datetimes(min_value=datetime(1970, 1, 2), max_value=datetime(2200, 1, 1))
    zones = st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8))])

    def spell(moment: datetime, zone: timezone, fraction: bool, lower: bool) -> str:
        text = moment.replace(tzinfo=zone).isoformat(timespec="microseconds" if fraction else "seconds")
        text = text.replace("+00:00", "Z")
        return text.replace("T", "t").replace("Z", "z") if lower else text

    return st.builds(spell, moments, zones, st.booleans(), st.booleans())


def _text(schema: Schema, literals: tuple[str, ...]) -> st.SearchStrategy[str]:
    low = int(schema.get("minLength", 0))
    high = min(int(schema.get("maxLength", MAX_TEXT)), max(low, MAX_TEXT))
    if "enum" in schema:
        base: st.SearchStrategy[str] = st.sampled_from([str(v) for v in schema["enum"]])
    elif schema.get("format") == "date-time":
        base = _datetimes()
    elif "pattern" in schema:
        base = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        base = st.text(_CHARS, min_size=low, max_size=high)
    fitting = [v for v in literals if string_ok(schema, v)]
    if fitting:
        base = st.one_of(st.sampled_from(fitting), base)
    return base.filter(lambda s: string_ok(schema, s))


def string_ok(schema: Schema, value: str) -> bool:
    """The string rules of a node (lengths in characters, as the API server counts them)."""
    if not int(schema.get("minLength", 0)) <= len(value) <= int(schema.get("maxLength", 1 << 30)):
        return False
    if "enum" in schema and value not in schema["enum"]:
        return False
    return "pattern" not in schema or re.fullmatch(schema["pattern"], value) is not None


def _number(schema: Schema) -> st.SearchStrategy[Any]:
    low, high = schema.get("minimum"), schema.get("maximum")
    if schema.get("type") == "integer":
        return st.integers(min_value=low, max_value=high if high is not None else (low or 0) + 10**6)
    floats = st.floats(min_value=low, max_value=high, allow_nan=False, allow_infinity=False)
    return st.one_of(floats, st.integers(-(10**6), 10**6).filter(lambda n: _in_range(schema, n)))


def _in_range(schema: Schema, n: float) -> bool:
    return schema.get("minimum", n) <= n <= schema.get("maximum", n)


def list_key(schema: Schema) -> Callable[[Any], Any] | None:
    """What items of a list map or set must not repeat, or None for a plain list."""
    if schema.get("x-kubernetes-list-type") == "map":
        keys = schema["x-kubernetes-list-map-keys"]
        return lambda item: repr([item.get(k) for k in keys]) if isinstance(item, Mapping) else repr(item)
    if schema.get("x-kubernetes-list-type") == "set":
        return repr
    return None


def valid(
    schema: Schema, literals: tuple[str, ...] = (), *, check_rules: bool = True
) -> st.SearchStrategy[Any]:
    """Values of one schema node that every rule accepts (without its own CEL rules when not
    `check_rules`: the starting point for breaking one of them)."""
    literals = (*literals, *_literals(schema))
    out = _unchecked(schema, literals)
    rules = _rules(schema)
    if check_rules and rules:
        out = out.filter(lambda v: all(rule_holds(r["rule"], schema, v) for r in rules))
    return out


def _unchecked(schema: Schema, literals: tuple[str, ...]) -> st.SearchStrategy[Any]:
    kind = schema.get("type")
    if schema.get("x-kubernetes-int-or-string"):
        return st.one_of(st.integers(0, 10**6), _text(schema, literals))
    if kind == "string":
        return _text(schema, literals)
    if kind in ("integer", "number"):
        return _number(schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "array":
        low = int(schema.get("minItems", 0))
        return st.lists(
            valid(schema["items"], literals),
            min_size=low,
            max_size=min(int(schema.get("maxItems", MAX_ITEMS)), max(low, MAX_ITEMS)),
            unique_by=list_key(schema),
        )
    if kind == "object":
        return _object(schema, literals)
    raise ValueError(f"schema node of type {kind!r} is not supported: {dict(schema)}")


def _object(schema: Schema, literals: tuple[str, ...], skip: str = "") -> st.SearchStrategy[dict[str, Any]]:
    props = schema.get("properties") or {}
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        low = int(schema.get("minProperties", 0))
        return st.dictionaries(
            _LABELISH,
            valid(extra, literals),
            min_size=low,
            max_size=min(int(schema.get("maxProperties", MAX_ITEMS)), max(low, MAX_ITEMS)),
        )
    required = set(schema.get("required", ()))
    return st.fixed_dictionaries(
        {k: valid(v, literals) for k, v in props.items() if k in required and k != skip},
        optional={k: valid(v, literals) for k, v in props.items() if k not in required and k != skip},
    )


# --- violations ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Violation:
    """One broken rule: the node it is on (`steps` through the schema, ITEM and KEY for list items
    and map values), the field the API server blames below that node, and the rule."""

    steps: tuple[str, ...]
    rule: str
    detail: str = ""
    """The enum values, the bound, or the CEL rule's message."""
    below: tuple[str, ...] = ()
    """The field under the node that is blamed (a missing or unknown one, a CEL rule's fieldPath)."""

    def __str__(self) -> str:
        where = ".".join(s for s in (*self.steps, *self.below)) or "<root>"
        return f"{where}: {self.rule}" + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Invalid:
    manifest: dict[str, Any]
    violation: Violation
    path: Path_
    """The concrete place in the manifest: keys, and list indexes."""

    @property
    def field(self) -> str:
        """The place as the API server names it: spec.approvals[0].name, spec.metrics.acc."""
        out = ""
        for part in self.path:
            out += f"[{part}]" if isinstance(part, int) else ("." if out else "") + part
        return out


_WRONG_TYPE: dict[str, Any] = {
    "string": 12345,
    "integer": "twelve",
    "number": "twelve",
    "boolean": "yes-please",
    "object": "an-object",
    "array": "a-list",
}


def _node_violations(
    schema: Schema, steps: tuple[str, ...]
) -> list[tuple[Violation, st.SearchStrategy[Any]]]:
    """Ways to break the node itself, each with values that break only that rule (as far as one
    value can: a string too long for a pattern field may match no pattern either)."""
    kind = schema.get("type")
    out: list[tuple[Violation, st.SearchStrategy[Any]]] = []

    def add(rule: str, values: st.SearchStrategy[Any], detail: str = "", below: tuple[str, ...] = ()) -> None:
        out.append((Violation(steps, rule, detail, below), values))

    if schema.get("x-kubernetes-int-or-string"):
        add("type", st.sampled_from([True, ["1"], {"a": 1}]))
        if "pattern" in schema:
            add("pattern", st.sampled_from(["lots", "1.5.5", "-x"]), schema["pattern"])
        return out
    if kind in _WRONG_TYPE:
        add("type", st.just(_WRONG_TYPE[kind]), str(kind))
    if kind == "string":
        if "enum" in schema:
            add(
                "enum",
                st.sampled_from(["", "Approved", "maybe", "rollBack"]).filter(
                    lambda s: s not in schema["enum"]
                ),
            )
        if "pattern" in schema:
            bad = st.sampled_from(["-leading", "UPPER case", "trailing\n", "ünïcode", "a/b", "..", "x" * 3])
            add("pattern", bad.filter(lambda s: not string_ok(schema, s)), schema["pattern"])
        if schema.get("format") == "date-time":
            # The last two pass the apiserver's date-time format check alone; the CRD's pattern
            # refuses them, as pydantic does.
            odd = ["yesterday", "2026-13-01T00:00:00Z", "2026-01-02 03:04:05", "2026-01-02T03:04:05x5Z"]
            add("format", st.sampled_from([*odd, "2026-01-02T03:04:05+99:99"]))
        if "maxLength" in schema:
            add("maxLength", st.just("a" * (int(schema["maxLength"]) + 1)), str(schema["maxLength"]))
        if int(schema.get("minLength", 0)) > 0:
            add("minLength", st.just(""), str(schema["minLength"]))
    if kind in ("integer", "number"):
        step = 1 if kind == "integer" else 0.5
        if "minimum" in schema:
            add("minimum", st.just(schema["minimum"] - step), str(schema["minimum"]))
        if "maximum" in schema:
            add("maximum", st.just(schema["maximum"] + step), str(schema["maximum"]))
    if kind == "array":
        item = valid(schema["items"])
        if "maxItems" in schema:
            add("maxItems", _many(schema, int(schema["maxItems"]) + 1), str(schema["maxItems"]))
        if int(schema.get("minItems", 0)) > 0:
            add("minItems", st.just([]), str(schema["minItems"]))
        if list_key(schema) is not None:
            add("duplicate", item.map(lambda v: [v, v]))
    if kind == "object":
        props = schema.get("properties") or {}
        for name in schema.get("required", ()):
            add("required", _object(schema, (), skip=name), name, (name,))
        if props and "additionalProperties" not in schema:
            add(
                "unknown",
                _object(schema, ()).map(lambda v: {**v, UNKNOWN_FIELD: "surprise"}),
                below=(UNKNOWN_FIELD,),
            )
        if "maxProperties" in schema and isinstance(schema.get("additionalProperties"), Mapping):
            n = int(schema["maxProperties"]) + 1
            values = st.lists(valid(schema["additionalProperties"]), min_size=n, max_size=n)
            add("maxProperties", values.map(lambda vs: {f"k{i}": v for i, v in enumerate(vs)}), str(n - 1))
        if int(schema.get("minProperties", 0)) > 0:
            add("minProperties", st.just({}), str(schema["minProperties"]))
    for rule in _rules(schema):
        unchecked = valid(schema, check_rules=False)
        if kind == "array":  # a uniqueness rule is broken by an item twice, rarely by chance
            unchecked = st.one_of(valid(schema["items"]).map(lambda v: [v, v]), unchecked)
        values = unchecked.filter(lambda v, r=rule["rule"]: not rule_holds(r, schema, v))
        below = tuple(p for p in rule.get("fieldPath", "").split(".") if p)
        add("cel", values, rule["message"], below)
    return out


def _many(schema: Schema, n: int) -> st.SearchStrategy[list[Any]]:
    """n items of a list, distinct where the list needs them distinct: one valid item, copied with
    keys k0, k1, ... (a name every key pattern of these schemas admits)."""
    items = schema["items"]
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        return st.just([f"k{i}" for i in range(n)])
    if list_type == "map":
        keys = schema["x-kubernetes-list-map-keys"]
        return valid(items).map(lambda v: [{**v, **{k: f"k{i}" for k in keys}} for i in range(n)])
    return valid(items).map(lambda v: [v] * n)


def violations(schema: Schema, steps: tuple[str, ...] = ()) -> list[tuple[Violation, st.SearchStrategy[Any]]]:
    """Every violation site of the schema, with the values that break it there."""
    out = [s for s in _node_violations(schema, steps) if steps or s[0].rule != "type"]
    for name, sub in (schema.get("properties") or {}).items():
        if not steps and name in ("apiVersion", "kind", "metadata", "status"):
            continue  # the envelope is the API server's own; status is the operator's subresource
        out += violations(sub, (*steps, name))
    if schema.get("type") == "array":
        out += violations(schema["items"], (*steps, ITEM))
    extra = schema.get("additionalProperties")
    if isinstance(extra, Mapping):
        out += violations(extra, (*steps, KEY))
    return out


def _placed(
    schema: Schema, steps: Sequence[str], bad: st.SearchStrategy[Any]
) -> st.SearchStrategy[tuple[Any, Path_]]:
    """A value of `schema` valid everywhere but at `steps`, where `bad` goes; with the concrete path."""
    if not steps:
        return bad.map(lambda v: (v, ()))
    step, rest = steps[0], steps[1:]
    if step == ITEM:
        inner = _placed(schema["items"], rest, bad)
        room = min(2, int(schema.get("maxItems", 3)) - 1)
        others = st.lists(valid(schema["items"]), max_size=room, unique_by=list_key(schema))
        key = list_key(schema) or (lambda v: object())

        def join(placed: tuple[Any, Path_], more: list[Any]) -> tuple[Any, Path_]:
            value, path = placed
            return [value, *(m for m in more if key(m) != key(value))], (0, *path)

        return st.builds(join, inner, others)
    if step == KEY:
        inner = _placed(schema["additionalProperties"], rest, bad)
        return st.builds(lambda k, placed: ({k: placed[0]}, (k, *placed[1])), _LABELISH, inner)
    inner = _placed(schema["properties"][step], rest, bad)
    return st.builds(
        lambda obj, placed: ({**obj, step: placed[0]}, (step, *placed[1])),
        _object(schema, (), skip=step),
        inner,
    )


# --- manifests -------------------------------------------------------------------------------------

NAMES = st.from_regex(r"[a-z0-9]{1,10}", fullmatch=True).map(lambda s: f"fz-{s}")


def _envelope(crd: Crd, name: str, spec: Any) -> dict[str, Any]:
    return {"apiVersion": crd.api_version, "kind": crd.kind, "metadata": {"name": name}, "spec": spec}


def valid_manifest(kind: str) -> st.SearchStrategy[dict[str, Any]]:
    """Manifests of `kind` that the schema accepts (no namespace: the test puts them in its own)."""
    crd = crds()[kind]
    return st.builds(functools.partial(_envelope, crd), NAMES, valid(crd.schema["properties"]["spec"]))


@functools.cache
def violation_sites(kind: str) -> tuple[tuple[Violation, st.SearchStrategy[Any]], ...]:
    return tuple(violations(crds()[kind].schema))


def invalid_manifest(kind: str, site: Violation | None = None) -> st.SearchStrategy[Invalid]:
    """Manifests of `kind` with one violation (of any site, or the one given)."""
    crd = crds()[kind]
    sites = [s for s in violation_sites(kind) if site is None or s[0] == site]
    if not sites:
        raise ValueError(f"{kind} has no violation {site}")

    def build(site: tuple[Violation, st.SearchStrategy[Any]]) -> st.SearchStrategy[Invalid]:
        violation, bad = site
        root = _placed(crd.schema, violation.steps, bad)

        def make(name: str, placed: tuple[Any, Path_]) -> Invalid:
            body, path = placed
            body.pop("status", None)
            manifest = {**body, "apiVersion": crd.api_version, "kind": crd.kind, "metadata": {"name": name}}
            return Invalid(manifest, violation, (*path, *violation.below))

        return st.builds(make, NAMES, root)

    return st.sampled_from(sites).flatmap(build)
