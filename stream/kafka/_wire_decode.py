"""Bytes -> wire model: the limits checked before parsing, then one msgspec decode, errors as MessageError.

Before parsing: size (the topic's limit), JSON nesting depth and integer literals beyond 64 bits
(|value| > 2^63 - 1, in any field; refused unparsed), all counted on the bytes with the strings blanked out. Then msgspec
decodes straight into the topic's Struct. Error details name the field and the rule, never a value:
msgspec's messages are rewritten (quoted values dropped, unknown keys not named).
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import msgspec
import numpy as np

from bpstream.filters import Reason

from bpstream.stream.core import MessageError
from ._wire_in import COMMAND_TYPES, ENCODINGS, ROLES, SOURCES
from ._wire_types import PATIENT_ID_RULE, SEQ_MAX

__all__ = ["prescan", "decode", "convert", "json_depth"]

T = TypeVar("T")

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")
# an integer literal (not part of a fraction or an exponent) of 19 or more digits
_LONG_INT = re.compile(rb"(?<![0-9.eE+\-])-?([0-9]{19,})(?![0-9.eE])")
_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_ONE_OF = {"type": COMMAND_TYPES, "encoding": ENCODINGS, "source": SOURCES}


class _Envelope(msgspec.Struct):
    """Read only on a failed decode: is it an object, and does it name the expected schema?"""

    schema: Any = None


_ENVELOPE = msgspec.json.Decoder(_Envelope)


def _blank_strings(data: bytes) -> bytes:
    """``data`` with every JSON string replaced by ``""`` (the common case, no backslash: a split)."""
    if b'"' not in data:
        return data
    if b"\\" not in data:
        return b'""'.join(data.split(b'"')[0::2])
    return _JSON_STRING.sub(b'""', data)


def json_depth(bare: bytes) -> int:
    """The deepest nesting of objects/arrays in ``bare`` (JSON with its strings blanked out)."""
    brackets = bare.translate(None, _NOT_BRACKETS)
    if len(brackets) <= 1:
        return len(brackets)
    if len(brackets) > 256:  # long runs (a hostile message): vectorised
        a = np.frombuffer(brackets, dtype=np.uint8)
        return int(np.cumsum(np.where((a == 0x5B) | (a == 0x7B), 1, -1)).max(initial=0))
    depth = deepest = 0
    for c in brackets:
        if c == 0x5B or c == 0x7B:
            depth += 1
            deepest = depth if depth > deepest else deepest
        else:
            depth -= 1
    return deepest


def prescan(data: bytes | None, max_bytes: int | None, max_depth: int) -> bytes:
    """The checks before parsing (size, depth, 64-bit integers); returns ``data`` as bytes."""
    if data is None or len(data) == 0:
        raise MessageError(Reason.MSG_NOT_JSON, "empty message")
    if max_bytes is not None and len(data) > max_bytes:
        raise MessageError(Reason.MSG_OVERSIZED, f"{len(data)} bytes > limit {max_bytes}")
    data = bytes(data)
    bare = _blank_strings(data)
    if json_depth(bare) > max_depth:
        raise MessageError(Reason.MSG_INVALID, f"JSON nested deeper than {max_depth} levels")
    for m in _LONG_INT.finditer(bare):  # |value| > 2^63 - 1, in any field; never a Python big integer
        if len(m.group(1)) > 19 or int(m.group(1)) > SEQ_MAX:
            raise MessageError(Reason.MSG_INVALID, "an integer beyond 64 bits")
    return data


def decode(data: bytes, decoder: msgspec.json.Decoder, schema: str) -> Any:
    """``data`` (prescanned) -> the decoder's type, or MessageError with the reason and a value-free detail."""
    try:
        return decoder.decode(data)
    except msgspec.ValidationError as exc:
        failure = exc
    except msgspec.DecodeError as exc:
        text = str(exc)
        if "UTF-8" in text:
            raise MessageError(Reason.MSG_NOT_JSON, "not UTF-8 text") from None
        pos = re.search(r"\(byte (\d+)\)", text)
        raise MessageError(Reason.MSG_NOT_JSON, f"not JSON (at byte {pos.group(1)})" if pos else "not JSON") from None
    except RecursionError:
        raise MessageError(Reason.MSG_NOT_JSON, "not JSON") from None
    try:
        envelope = _ENVELOPE.decode(data)
    except msgspec.DecodeError:
        raise MessageError(Reason.MSG_INVALID, "message is not a JSON object") from None
    _raise(failure, envelope.schema, schema)


def convert(doc: Any, kind: type[T], schema: str) -> T:
    """A decoded JSON document (dicts) -> ``kind``, with the same reasons and details as ``decode``."""
    try:
        return msgspec.convert(doc, kind)
    except msgspec.ValidationError as exc:
        if not isinstance(doc, dict):
            raise MessageError(Reason.MSG_INVALID, "message is not a JSON object") from None
        _raise(exc, doc.get("schema"), schema)


def _raise(exc: msgspec.ValidationError, found: Any, schema: str) -> None:
    if found != schema:  # the schema is checked first, wherever it stands in the object
        raise MessageError(Reason.MSG_SCHEMA_VERSION, f"schema is not {schema!r}") from None
    raise MessageError(Reason.MSG_INVALID, detail(str(exc))) from None


def detail(message: str) -> str:
    """msgspec's error message -> ``field: rule``, with no value and no unknown key in it."""
    m = _AT.match(message)
    what = m.group("what") if m else message
    path = re.sub(r"\[[^\]]*\]", "[]", (m.group("path") if m else None) or "").lstrip(".")
    missing = re.match(r"Object missing required field `(\w+)`", what)
    if missing:
        return f"{path + '.' if path else ''}{missing.group(1)} is required"
    if what.startswith("Object contains unknown field"):
        return f"channels may only be {', '.join(ROLES)}" if path == "channels" else f"{path or 'message'} has an unknown field"
    if what.startswith(("Invalid enum value", "Invalid value")):
        allowed = _ONE_OF.get(path.rsplit(".", 1)[-1])
        return f"{path} must be one of {', '.join(allowed) if allowed else 'the allowed values'}"
    if "matching regex" in what:
        return f"patient_id must be {PATIENT_ID_RULE}" if path == "patient_id" else f"{path} does not match its pattern"
    what = re.sub(r"'[^']*'", "(value)", what)  # defensive: no quoted value ever leaves
    return f"{path or 'message'}: {what[0].lower() + what[1:]}" if what else f"{path or 'message'} is invalid"
