"""Canonical JSON: the RFC 8785 (JCS) bytes every trustcircle signature covers.

The definition is the maintained ``rfc8785`` library; anything it rejects is refused
with :class:`~trustcircle.errors.BadInputError`.

Why a fast path. ``rfc8785.dumps`` escapes strings with a per-match Python callback:
on a payload carrying a 2 KB script it costs about 93 µs, more than the RSA-4096
verification it feeds (about 77 µs), while verifying records must run at no less than
70 % of the raw primitive's rate. Every trustcircle payload lives in a small domain:
JSON objects whose keys are ASCII text, and whose values are text, ``null``, arrays or
objects of the same kind (no numbers, no booleans). On that domain the C encoder of
the standard library, ``json`` with ``ensure_ascii=False``, ``sort_keys=True`` and
``separators=(",", ":")``, writes exactly the JCS bytes:

* strings (RFC 8785 §3.2.2.2): both escape ``"`` and ``\\`` as ``\\"`` and ``\\\\``,
  U+0008/09/0A/0C/0D as ``\\b \\t \\n \\f \\r``, every other U+0000..U+001F as
  ``\\u00hh`` with lowercase hex, and write everything else literally, U+007F,
  U+2028 and U+2029 included; the result is then encoded as UTF-8, which refuses lone
  surrogates exactly where JCS does (such input is handed to ``rfc8785`` to refuse);
* key order (§3.2.3): JCS sorts by UTF-16 code units, ``sort_keys`` by code points;
  the two orders differ only when a key holds a character beyond the BMP, so the fast
  path takes ASCII keys only (objects with any other key go to ``rfc8785``);
* whitespace: none in either.

Everything outside the domain (numbers, booleans, non-ASCII keys, subclasses of the
builtin types, other types) goes to ``rfc8785``. ``tests/signing/test_canonical.py``
proves with hypothesis that both paths give identical bytes on the domain.
Nesting deeper than :data:`MAX_DEPTH` (which also catches reference cycles) is
refused with :class:`~trustcircle.errors.LimitExceededError`.

Payloads of a fixed layout (``payload.py``, ``updatesets/manifest.py``) skip building
and walking a dict: they write their sorted keys themselves and quote each exact
``str`` value with :func:`_json_string`, the very function the C encoder calls for
strings, then encode the text as UTF-8 once. Their tests prove those bytes identical to
:func:`canonical_json` of the same document.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

import rfc8785

from trustcircle.errors import BadInputError, LimitExceededError

MAX_DEPTH = 32
"""Deepest nesting of arrays and objects accepted (trustcircle payloads use 3)."""

_json_string: Callable[[str], str] = json.encoder.encode_basestring
"""``"…"``: one exact ``str`` quoted and escaped as JCS does, not yet UTF-8 encoded.

The C function the encoder below calls for every string (``ensure_ascii=False``), so
the argument of the module docstring holds for it; encoding its text as UTF-8 refuses a
lone surrogate (the caller then falls back to :func:`canonical_json` to refuse it).
"""

_ENCODER = json.JSONEncoder(
    ensure_ascii=False,
    sort_keys=True,
    separators=(",", ":"),
    check_circular=False,  # _fast_domain has bounded the depth, so there is no cycle
    allow_nan=False,
)


def canonical_json(obj: object) -> bytes:
    """The RFC 8785 (JCS) serialisation of *obj* as UTF-8 bytes.

    Raises :class:`BadInputError` for values JCS cannot represent (lone surrogates,
    unsafe integers, non-finite floats, non-string keys, other types) and
    :class:`LimitExceededError` for nesting deeper than :data:`MAX_DEPTH`.
    """
    if _fast_domain(obj, 0):
        try:
            return _ENCODER.encode(obj).encode("utf-8")
        except UnicodeEncodeError:
            pass  # a lone surrogate: rfc8785 refuses it below, with its own words
    return _jcs(obj)


def _fast_domain(obj: object, depth: int) -> bool:
    """True when the stdlib encoder writes JCS bytes for *obj* (see the module docstring).

    Walks the whole value, so that the depth bound holds for the fallback path too.
    """
    kind = type(obj)
    if kind is str or obj is None:
        return True
    if not isinstance(obj, dict | list | tuple):
        return False
    if depth >= MAX_DEPTH:
        raise LimitExceededError(
            f"value nested deeper than {MAX_DEPTH} levels cannot be signed: flatten it"
        )
    if isinstance(obj, dict):
        ok = kind is dict
        for key, value in obj.items():
            if type(value) is not str and value is not None:  # strings: no call, they pass
                ok = _fast_domain(value, depth + 1) and ok
            ok = ok and type(key) is str and key.isascii()
        return ok
    ok = kind is list or kind is tuple
    for item in obj:
        if type(item) is not str and item is not None:
            ok = _fast_domain(item, depth + 1) and ok
    return ok


def _jcs(obj: object) -> bytes:
    try:
        result: bytes = rfc8785.dumps(cast(Any, obj))
    except (rfc8785.CanonicalizationError, UnicodeError) as exc:  # rfc8785 leaks the latter
        raise BadInputError(
            f"value cannot be written as canonical JSON (RFC 8785): {str(exc)[:120]}; "
            "use only text, null, safe integers, finite numbers, booleans, arrays and objects"
        ) from exc
    return result
