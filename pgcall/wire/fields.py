"""Field-level rules shared by every client message (protocol.md §3): the error a message gets,
a validated control request, uuids and identities as PostgreSQL and pg-relay spell them,
JavaScript's trim and length, and typed fields. Pure.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

_IDENTITY_RE = re.compile(r"[0-9a-f]{64}")
# PostgreSQL's uuid input (datatype-uuid docs, §8.12): upper or lower case, optional braces,
# a hyphen allowed after any group of four hex digits. Accepting what PostgreSQL accepts keeps
# every session id that worked against pg-relay working here.
_UUID_RE = re.compile(r"\{?([0-9a-fA-F]{4}(?:-?[0-9a-fA-F]{4}){7})\}?")
# Unicode Cc (C0, DEL, C1), bidi embeddings/overrides/isolates, and lone surrogates.
BAD_NAME_RE = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
BAD_TEXT_RE = re.compile("[\x00\ud800-\udfff]")


class ProtocolError(Exception):
    """A client message that gets ``{"type":"error","req_type":…,"message":…}``."""

    def __init__(self, req_type: str, message: str) -> None:
        super().__init__(req_type, message)
        self.req_type = req_type
        self.message = message


@attrs.frozen
class Control:
    """A control request (§3, or a room request), fields validated and normalised."""

    type: str
    fields: dict[str, Any]


def canonical_uuid(value: object) -> str | None:
    """The lower-case 8-4-4-4-12 form of a uuid string PostgreSQL would accept, else None."""
    if not isinstance(value, str):
        return None
    m = _UUID_RE.fullmatch(value)
    if m is None or value.startswith("{") != value.endswith("}"):
        return None
    h = m.group(1).replace("-", "").lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


# JavaScript String.prototype.trim removes WhiteSpace (TAB, VT, FF, SP, NBSP, U+FEFF, every
# Zs) and LineTerminator (LF, CR, U+2028, U+2029) - ECMA-262 §12.2, §12.3. Python's str.strip
# differs: it also strips U+001C-U+001F and U+0085, and keeps U+FEFF.
JS_WHITESPACE = (
    "\t\n\x0b\x0c\r \xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"
)


def js_trim(text: str) -> str:
    """JavaScript's ``text.trim()``."""
    return text.strip(JS_WHITESPACE)


def utf16_len(text: str) -> int:
    """JavaScript's ``text.length``: UTF-16 code units (an astral character counts 2)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def is_identity(value: object) -> bool:
    """True for an identity as pgcall and pg-relay mint them: 64 lower-case hex (§5)."""
    return isinstance(value, str) and _IDENTITY_RE.fullmatch(value) is not None


def string_field(msg: dict[str, Any], name: str, req_type: str) -> str:
    # Missing fields default to '' (§3); JavaScript destructuring defaults only `undefined`,
    # so an explicit null is a non-string too.
    value = msg.get(name, "")
    if not isinstance(value, str):
        raise ProtocolError(req_type, f"Invalid field: {name} must be a string")
    return value


def number(value: object, low: float, high: float, integer: bool) -> int | float | None:
    """`value` as an int (or float) within [low, high], else None. bool is not a number."""
    if type(value) is not int:  # a frame's header fields are: one test (a bool is not int)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return None
        if integer and isinstance(value, float):
            # JSON has one number type: 16000.0 or 1.6e4 is the integer 16000 in JavaScript.
            if not value.is_integer():  # also false for NaN and infinities
                return None
            value = int(value)
    # Compare before any float(): a 400-digit integer must not overflow. NaN fails here too.
    if not low <= value <= high:
        return None
    return value if integer else float(value)
