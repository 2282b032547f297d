"""Label values from resources enter PromQL only escaped, and only inside string literals."""

from __future__ import annotations

import pytest

from modelgate.observe.promql import (
    PromQLTemplateError,
    escape_label_value,
    escape_regex,
    quote,
    render,
    render_inline,
)

INJECTION = '"} or vector(1) or {x="'


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("fraud-detector", "fraud-detector"),
        ("v1.2.0", "v1.2.0"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("a\nb", "a\\nb"),
        ("a\rb\tc", "a\\rb\\tc"),
        ("bell\x07", "bell\\u0007"),
        ("ünïcode", "ünïcode"),
        ('\\"', '\\\\\\"'),
        (INJECTION, '\\"} or vector(1) or {x=\\"'),
    ],
)
def test_escape_label_value_follows_promql_string_rules(value: str, escaped: str) -> None:
    assert escape_label_value(value) == escaped


def test_quote_wraps_the_escaped_value() -> None:
    assert quote('a"b') == '"a\\"b"'


def test_escape_regex_quotes_re2_metacharacters() -> None:
    assert escape_regex("v1.0+(rc)|x") == "v1\\.0\\+\\(rc\\)\\|x"


def test_render_inline_fills_every_placeholder() -> None:
    q = 'rate(m{namespace="{{namespace}}", model="{{model}}", version="{{ version }}"}[5m])'
    assert render_inline(q, "fraud-prod", "fraud-detector", "1.0.0") == (
        'rate(m{namespace="fraud-prod", model="fraud-detector", version="1.0.0"}[5m])'
    )


def test_injected_value_stays_inside_the_string_literal() -> None:
    rendered = render_inline('m{model="{{model}}"}', "ns", INJECTION, "1")
    assert rendered == 'm{model="\\"} or vector(1) or {x=\\""}'
    # exactly one unescaped string literal remains: the label value
    assert rendered.replace('\\"', "").count('"') == 2


def test_value_in_a_regex_matcher_is_regex_quoted_then_escaped() -> None:
    rendered = render_inline('m{version=~"{{version}}|canary", model!~ "{{model}}"}', "ns", "a.b", "1.0")
    assert rendered == 'm{version=~"1\\\\.0|canary", model!~ "a\\\\.b"}'


@pytest.mark.parametrize(
    "query",
    [
        "m * {{version}}",
        "m{model='{{model}}'}",
        "m{model=`{{model}}`}",
        'm{model="x"} # {{model}}',
        'm{model="x"} + {{model}} + m{model="y"}',
    ],
)
def test_placeholder_outside_a_double_quoted_string_is_rejected(query: str) -> None:
    with pytest.raises(PromQLTemplateError, match="double-quoted"):
        render_inline(query, "ns", "m", "1")


def test_unknown_placeholder_is_rejected() -> None:
    with pytest.raises(PromQLTemplateError, match="unknown placeholder"):
        render_inline('m{pod="{{pod}}"}', "ns", "m", "1")


def test_quotes_and_escapes_before_the_placeholder_do_not_confuse_the_lexer() -> None:
    q = (
        'label_replace(m{a="x\\"y", b=\'"\'}, "dst", "$1", "src", "(.*)")'
        ' * on() group_left m{model="{{model}}"}'
    )
    assert render(q, {"model": 'q"'}).endswith('m{model="q\\""}')


def test_a_query_without_placeholders_is_unchanged() -> None:
    q = 'sum by (namespace, model, version) (rate(x{code=~"5.."}[5m]))'
    assert render_inline(q, "ns", "m", "1") == q
