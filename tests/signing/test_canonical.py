"""canonical_json is RFC 8785 (JCS), byte for byte, on its fast path and off it."""

from __future__ import annotations

import enum
import math
from typing import Any

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from trustcircle.errors import BadInputError, LimitExceededError
from trustcircle.signing import canonical_json
from trustcircle.signing.canonical import MAX_DEPTH, _fast_domain, _json_string

# Characters where JSON encoders tend to disagree: every control character, DEL, the
# JavaScript line separators, quotes, backslashes, the BOM, non-BMP and private use.
_TRICKY = [chr(c) for c in range(0x20)] + [
    '"',
    "\\",
    "/",
    "\x7f",
    "\x80",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ue000",
    "\uffff",
    "\U0001f600",
    "\U0010ffff",
]
_TEXT = st.text(st.one_of(st.characters(codec="utf-8"), st.sampled_from(_TRICKY)), max_size=40)
_ASCII_KEY = st.text(st.characters(codec="ascii"), max_size=12)

_IN_DOMAIN = st.recursive(
    st.none() | _TEXT,
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.lists(inner, max_size=5).map(tuple)
        | st.dictionaries(_ASCII_KEY, inner, max_size=6)
    ),
    max_leaves=30,
)

_ANY_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(_TEXT, inner, max_size=6),
    max_leaves=30,
)


@settings(max_examples=500)
@given(_IN_DOMAIN)
def test_fast_path_is_byte_identical_to_rfc8785(value: Any) -> None:
    assert _fast_domain(value, 0), "the strategy must stay inside the fast path's domain"
    assert canonical_json(value) == rfc8785.dumps(value)


@settings(max_examples=300)
@given(_ANY_JSON)
def test_any_json_value_is_byte_identical_to_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_rfc8785_key_sorting_vector_orders_by_utf16_not_code_points() -> None:
    # RFC 8785 §3.2.3: U+1F600 (surrogates D83D DE00) sorts before U+FB33.
    value = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    ).encode()
    assert canonical_json(value) == expected


def test_rfc8785_primitive_values_vector() -> None:
    # RFC 8785 §3.2.2 example: numbers, literals and string escaping.
    value = {
        "numbers": [333333333.33333329, 1e30, 4.50, 2e-3, 0.000000000000000000000000001],
        "string": '\u20ac$\x0f\nA\'B"\\\\"/',
        "literals": [None, True, False],
    }
    expected = (
        r'{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        r'"string":"€$\u000f\nA' + "'" + r'B\"\\\\\"/"}'
    ).encode()
    assert canonical_json(value) == expected


def test_fast_path_escapes_exactly_the_jcs_set() -> None:
    value = {"k": '\x00\x1f\b\t\n\f\r"\\\x7f\u2028\u00e9\U0001f600/'}
    expected = (
        b'{"k":"\\u0000\\u001f\\b\\t\\n\\f\\r\\"\\\\\x7f\xe2\x80\xa8\xc3\xa9\xf0\x9f\x98\x80/"}'
    )
    assert _fast_domain(value, 0)
    assert canonical_json(value) == expected


def test_non_bmp_keys_take_the_rfc8785_path_and_sort_by_utf16() -> None:
    value = {"\ue000": "private use", "\U0001f600": "emoji"}
    assert not _fast_domain(value, 0)
    assert canonical_json(value) == '{"\U0001f600":"emoji","\ue000":"private use"}'.encode()


class _Colour(str, enum.Enum):
    RED = "red"


def test_subclasses_of_builtin_types_match_rfc8785() -> None:
    class _Dict(dict[str, Any]):
        pass

    value = _Dict(b=_Colour.RED, a=("x", None))
    assert not _fast_domain(value, 0)
    assert canonical_json(value) == rfc8785.dumps(value) == b'{"a":["x",null],"b":"red"}'


@pytest.mark.parametrize(
    "value",
    [
        pytest.param({"k": "lone \ud800 surrogate"}, id="lone-surrogate-value"),
        pytest.param({"lone \udfff": "v"}, id="lone-surrogate-key"),
        pytest.param({1: "number key"}, id="non-string-key"),
        pytest.param({"k": math.nan}, id="nan"),
        pytest.param({"k": 2**53}, id="unsafe-integer"),
        pytest.param({"k": {"a", "b"}}, id="set"),
        pytest.param({"k": b"bytes"}, id="bytes"),
    ],
)
def test_values_jcs_cannot_represent_are_bad_input(value: object) -> None:
    with pytest.raises(BadInputError):
        canonical_json(value)


def test_nesting_beyond_the_bound_is_refused() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(LimitExceededError, match="nested deeper"):
        canonical_json(deep)
    deep_fallback: Any = 1  # outside the fast path: the bound holds there too
    for _ in range(MAX_DEPTH + 1):
        deep_fallback = {"k": deep_fallback}
    with pytest.raises(LimitExceededError):
        canonical_json(deep_fallback)


def test_reference_cycle_is_refused_not_looped() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    with pytest.raises(LimitExceededError):
        canonical_json(cycle)


def test_nesting_at_the_bound_is_accepted() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH):
        deep = [deep]
    assert canonical_json(deep) == b"[" * MAX_DEPTH + b'"leaf"' + b"]" * MAX_DEPTH


# -- _json_string: the quoting the fixed-layout payload builders use -------------------------

_TEXT_WITH_SURROGATES = st.text(
    st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from([*_TRICKY, "\ud800", "\udfff", "\ud83d"]),
    ),
    max_size=40,
)


@settings(max_examples=500)
@given(_TEXT)
def test_json_string_is_the_jcs_text_of_a_string(value: str) -> None:
    assert _json_string(value).encode("utf-8") == rfc8785.dumps(value)
    assert _json_string(value).encode("utf-8") == canonical_json(value)


@settings(max_examples=300)
@given(_TEXT_WITH_SURROGATES)
def test_json_string_leaves_lone_surrogates_for_utf8_to_refuse(value: str) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(UnicodeEncodeError):
            _json_string(value).encode("utf-8")
    else:
        assert _json_string(value).encode("utf-8") == expected
