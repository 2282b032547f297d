"""PromQL text built from resource fields, safely: escaping and placeholder rendering. Pure helpers.

A ModelDeployment's inline query may use the placeholders {{namespace}}, {{model}} and {{version}};
their values come from the resource, that is from whoever may write ModelDeployments. Two rules keep
such a value from changing the query's meaning (a model named `"} or vector(1) or {x="` must not turn
a "no data" into a passing 1):

1. A placeholder may only appear inside a double-quoted string literal, like
   `model="{{model}}"`. Anywhere else (bare, in a single-quoted or backtick string, in a comment) the
   query is rejected: no escaping can make a bare value safe.
2. The value is escaped for a PromQL double-quoted string (Go escape rules): backslash, double
   quote, newline, carriage return, tab and other control characters become escape sequences, so the
   value ends where the literal ends. When the literal is the right side of a regex matcher (`=~` or
   `!~`) the value is regex-quoted first, so `v1.0` matches the version "v1.0" and not "v1x0".

prometheus-api-client escapes nothing (its `label_config` is pasted in verbatim), so every value that
enters PromQL goes through this module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final

PLACEHOLDER: Final = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
PLACEHOLDERS: Final = ("namespace", "model", "version")

_STRING_ESCAPES: Final = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_RE2_SPECIAL: Final = frozenset("\\.+*?()|[]{}^$")


class PromQLTemplateError(ValueError):
    """An inline query whose placeholders cannot be filled safely."""


def escape_label_value(value: str) -> str:
    """`value` as the content of a PromQL double-quoted string (without the quotes)."""
    out = []
    for ch in value:
        if ch in _STRING_ESCAPES:
            out.append(_STRING_ESCAPES[ch])
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def quote(value: str) -> str:
    """`value` as a PromQL double-quoted string literal, quotes included."""
    return f'"{escape_label_value(value)}"'


def escape_regex(value: str) -> str:
    """`value` as an RE2 pattern matching exactly itself."""
    return "".join(f"\\{ch}" if ch in _RE2_SPECIAL else ch for ch in value)


def _string_contexts(query: str) -> list[tuple[int, int, bool]]:
    """(start, end, is_regex) of the *content* of every double-quoted string in `query`.

    A small lexer over PromQL's lexical rules: strings in ", ' or ` (backslash escapes in the first two,
    none in backticks), and `#` comments to the end of the line outside strings. Unterminated strings
    run to the end; Prometheus rejects those queries anyway."""
    spans: list[tuple[int, int, bool]] = []
    i, n = 0, len(query)
    while i < n:
        ch = query[i]
        if ch == "#":
            end = query.find("\n", i)
            i = n if end < 0 else end + 1
        elif ch in "\"'`":
            j = i + 1
            while j < n and query[j] != ch:
                j += 2 if ch != "`" and query[j] == "\\" else 1
            if ch == '"':
                before = query[:i].rstrip()
                spans.append((i + 1, min(j, n), before.endswith(("=~", "!~"))))
            i = j + 1
        else:
            i += 1
    return spans


def render(query: str, values: Mapping[str, str]) -> str:
    """Replace each {{name}} placeholder with values[name], escaped for the string literal it is in.

    Raises PromQLTemplateError for an unknown placeholder or one outside a double-quoted string."""
    strings = _string_contexts(query)
    out: list[str] = []
    last = 0
    for m in PLACEHOLDER.finditer(query):
        name = m.group(1)
        if name not in values:
            known = ", ".join("{{" + k + "}}" for k in values)
            raise PromQLTemplateError(f"unknown placeholder {m.group(0)}; known placeholders: {known}")
        where = next((s for s in strings if s[0] <= m.start() and m.end() <= s[1]), None)
        if where is None:
            example = 'model="{{model}}"'
            raise PromQLTemplateError(
                f"placeholder {m.group(0)} must be inside a double-quoted label value, like {example}"
            )
        value = escape_regex(values[name]) if where[2] else values[name]
        out += [query[last : m.start()], escape_label_value(value)]
        last = m.end()
    out.append(query[last:])
    return "".join(out)


def render_inline(query: str, namespace: str, model: str, version: str) -> str:
    """An inline metric query with {{namespace}}, {{model}} and {{version}} filled in, escaped."""
    return render(query, {"namespace": namespace, "model": model, "version": version})
