"""The constrained field types every wire model shares (msgspec ``Annotated`` types).

Each constraint is both checked on decode (msgspec) and written into the generated JSON Schemas, so
the contract and the decoder cannot drift apart. Rules that need the worker's settings or clock
(sampling-rate limit, chunk length, time range) or the samples themselves (base64, finiteness,
durations) are post-validation in ``_codec``; the schemas describe them in ``description``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

from msgspec import Meta

from bpstream.filters import Reason

__all__ = [
    "WAVEFORMS",
    "COMMANDS",
    "ESTIMATES",
    "EVENTS",
    "DEADLETTER",
    "PATIENT_ID_RULE",
    "PATIENT_ID_PATTERN",
    "SEQ_MAX",
    "PatientId",
    "Seq",
    "Count",
    "IsoTime",
    "ShortText",
    "Base64",
    "DEADLETTER_REASONS",
    "DeadLetterReason",
    "finite",
]

WAVEFORMS = "bp.waveforms.v1"
COMMANDS = "bp.commands.v1"
ESTIMATES = "bp.estimates.v1"
EVENTS = "bp.events.v1"
DEADLETTER = "bp.deadletter.v1"

# patient ids: 1-64 of [A-Za-z0-9._:-], not starting with "." (no path separators, no "..", no spaces).
# "$(?!\n)": Python's "$" also matches before a final newline, ECMA-262's (JSON Schema) does not: the
# look-ahead makes both engines accept exactly the same strings.
PATIENT_ID_RULE = "1-64 characters of [A-Za-z0-9._:-], not starting with '.'"
PATIENT_ID_PATTERN = r"^[A-Za-z0-9_:-][A-Za-z0-9._:-]{0,63}$(?!\n)"
SEQ_MAX = 2**63 - 1  # seq and every integer field: 0 <= value < 2^63
TIME_MAX_CHARS = 40
# strict base64 (what base64.b64decode(validate=True) accepts): whole 4-character groups, padded
BASE64_PATTERN = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$(?!\n)"

PatientId = Annotated[str, Meta(pattern=PATIENT_ID_PATTERN, min_length=1, max_length=64,
                                description=f"the patient id (and the Kafka key): {PATIENT_ID_RULE}")]
Seq = Annotated[int, Meta(ge=0, le=SEQ_MAX, description="per-patient sequence number, 0 <= seq < 2^63")]
Count = Annotated[int, Meta(ge=0, le=SEQ_MAX)]
IsoTime = Annotated[str, Meta(min_length=1, max_length=TIME_MAX_CHARS, extra_json_schema={"format": "date-time"},
                              description="ISO 8601 time with a UTC offset (Z or +hh:mm); inputs: inside "
                                          "BPSTREAM_TIME_MIN .. the worker's clock + BPSTREAM_TIME_MAX_AHEAD_S")]
ShortText = Annotated[str, Meta(min_length=1, max_length=128)]
Base64 = Annotated[str, Meta(extra_json_schema={"contentEncoding": "base64", "pattern": BASE64_PATTERN})]

# what a dead-letter record may give as its reason (msg_duplicate is never dead-lettered: a repeat is an event)
DEADLETTER_REASONS = (Reason.MSG_NOT_JSON, Reason.MSG_SCHEMA_VERSION, Reason.MSG_INVALID, Reason.MSG_NAN_SAMPLES,
                      Reason.MSG_OVERSIZED, Reason.MSG_UNKNOWN_PATIENT, Reason.MSG_STEP_FAILED, Reason.MSG_SEQ_GAP,
                      Reason.MSG_LATE)
DeadLetterReason = Literal[tuple(r.value for r in DEADLETTER_REASONS)]  # type: ignore[valid-type]


def finite(x: float | None) -> bool:
    """None (absent) or a finite number (JSON has no NaN; a document built in Python may)."""
    return x is None or math.isfinite(x)
