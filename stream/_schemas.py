"""Versioned wire schemas of the Kafka topics, validated on decode.

Five JSON schemas, each message carrying its name and version in ``"schema"``:

- ``bp.waveforms.v1``  (in, key = patient id): one chunk of ECG + PPG (+ optional ABP) samples.
- ``bp.commands.v1``   (in, key = patient id): ``calibrate``, ``reset``, ``discharge``.
- ``bp.estimates.v1``  (out, key = patient id): one SBP/DBP/MAP estimate per window (hop).
- ``bp.events.v1``     (out, key = patient id): calibration accepted/rejected, reset, discharge, ...
- ``bp.deadletter.v1`` (out, key = original key): a message that failed to decode or validate.

Consumers ignore unknown fields; adding an optional field keeps the version, anything else bumps it.
Times on the wire are ISO 8601 UTC strings with microseconds (``2026-11-23T16:28:47.000000Z``);
inside bpstream they are float seconds since the epoch. This module works on decoded JSON documents
(dicts); ``_codec`` turns them into bytes and samples into arrays.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from bpstream.filters import Reason

from ._errors import MessageError
from ._messages import Calibrate, Discharge, Reset

__all__ = [
    "WAVEFORMS",
    "COMMANDS",
    "ESTIMATES",
    "EVENTS",
    "DEADLETTER",
    "QUANTITIES",
    "Limits",
    "CommandMessage",
    "to_iso",
    "from_iso",
    "check_schema",
    "check_patient_id",
    "parse_command",
    "command_doc",
]

WAVEFORMS = "bp.waveforms.v1"
COMMANDS = "bp.commands.v1"
ESTIMATES = "bp.estimates.v1"
EVENTS = "bp.events.v1"
DEADLETTER = "bp.deadletter.v1"

ROLES = ("ecg", "ppg", "abp")
ENCODINGS = ("float32", "int16")
COMMAND_TYPES = ("calibrate", "reset", "discharge")
SOURCES = ("cuff", "arterial")
# estimate quantities: IEEE 11073-10101 generic (non-invasive/unspecified) blood pressure codes, LOINC
QUANTITIES = {
    "sbp": {"mdc_code": 150017, "mdc_ref_id": "MDC_PRESS_BLD_SYS", "loinc": "8480-6"},
    "dbp": {"mdc_code": 150018, "mdc_ref_id": "MDC_PRESS_BLD_DIA", "loinc": "8462-4"},
    "map": {"mdc_code": 150019, "mdc_ref_id": "MDC_PRESS_BLD_MEAN", "loinc": "8478-0"},
}
UNIT_MMHG = "mm[Hg]"  # UCUM
_PATIENT_RE = re.compile(r"^[A-Za-z0-9._:@/-]{1,64}$")


@dataclass(frozen=True)
class Limits:
    """Per-message limits applied on decode (from Settings)."""

    max_chunk_bytes: int = 1_000_000
    max_chunk_s: float = 60.0
    max_fs_hz: float = 2000.0


# -- time ------------------------------------------------------------------------------------------
def to_iso(t_s: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds)."""
    return datetime.fromtimestamp(t_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: Any, field: str = "time") -> float:
    """ISO 8601 with a UTC offset (``Z`` or ``+hh:mm``) -> epoch seconds. Naive times are refused."""
    if not isinstance(text, str):
        raise MessageError(Reason.MSG_INVALID, f"{field} must be an ISO 8601 string")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise MessageError(Reason.MSG_INVALID, f"{field} is not ISO 8601: {text[:40]!r}") from None
    if dt.tzinfo is None:
        raise MessageError(Reason.MSG_INVALID, f"{field} has no UTC offset")
    return dt.timestamp()


# -- field checks ----------------------------------------------------------------------------------
def check_schema(doc: Any, expected: str) -> dict:
    if not isinstance(doc, dict):
        raise MessageError(Reason.MSG_INVALID, "message is not a JSON object")
    name = doc.get("schema")
    if name != expected:
        raise MessageError(Reason.MSG_SCHEMA_VERSION, f"expected schema {expected!r}, got {str(name)[:40]!r}")
    return doc


def check_patient_id(value: Any) -> str:
    if not isinstance(value, str) or not _PATIENT_RE.match(value):
        raise MessageError(Reason.MSG_INVALID, "patient_id must be 1-64 characters of [A-Za-z0-9._:@/-]")
    return value


def number(doc: Mapping[str, Any], key: str, *, optional: bool = False) -> float | None:
    v = doc.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise MessageError(Reason.MSG_INVALID, f"{key} must be a finite number")
    return float(v)


def text(doc: Mapping[str, Any], key: str, *, optional: bool = False, max_len: int = 128) -> str | None:
    v = doc.get(key)
    if v is None and optional:
        return None
    if not isinstance(v, str) or not 0 < len(v) <= max_len:
        raise MessageError(Reason.MSG_INVALID, f"{key} must be a string of 1-{max_len} characters")
    return v


def integer(doc: Mapping[str, Any], key: str, minimum: int = 0) -> int:
    v = doc.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
        raise MessageError(Reason.MSG_INVALID, f"{key} must be an integer >= {minimum}")
    return v


# -- commands --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandMessage:
    patient_id: str
    issued_at_s: float
    operator: str | None
    command: Calibrate | Reset | Discharge


def parse_command(doc: Any) -> CommandMessage:
    """A decoded ``bp.commands.v1`` document -> CommandMessage (raises MessageError)."""
    doc = check_schema(doc, COMMANDS)
    patient = check_patient_id(doc.get("patient_id"))
    kind = doc.get("type")
    if kind not in COMMAND_TYPES:
        raise MessageError(Reason.MSG_INVALID, f"type must be one of {', '.join(COMMAND_TYPES)}")
    command_id = text(doc, "command_id")
    issued = from_iso(doc.get("issued_at"), "issued_at")
    operator = text(doc, "operator", optional=True)
    if kind == "calibrate":
        source = doc.get("source", "cuff")
        if source not in SOURCES:
            raise MessageError(Reason.MSG_INVALID, "source must be cuff or arterial")
        cmd: Calibrate | Reset | Discharge = Calibrate(
            command_id=command_id,
            measured_at_s=from_iso(doc.get("measured_at"), "measured_at"),
            sbp_mmhg=number(doc, "sbp_mmhg"),
            dbp_mmhg=number(doc, "dbp_mmhg"),
            map_mmhg=number(doc, "map_mmhg", optional=True),
            source=source,
        )
    elif kind == "reset":
        cmd = Reset(command_id)
    else:
        cmd = Discharge(command_id)
    return CommandMessage(patient, issued, operator, cmd)


def command_doc(patient_id: str, command: Calibrate | Reset | Discharge, issued_at_s: float,
                operator: str | None = None) -> dict:
    """The ``bp.commands.v1`` document for a command."""
    doc: dict[str, Any] = {"schema": COMMANDS, "patient_id": check_patient_id(patient_id),
                           "command_id": command.command_id, "issued_at": to_iso(issued_at_s)}
    if operator:
        doc["operator"] = operator
    if isinstance(command, Calibrate):
        doc.update(type="calibrate", sbp_mmhg=command.sbp_mmhg, dbp_mmhg=command.dbp_mmhg,
                   measured_at=to_iso(command.measured_at_s), source=command.source)
        if command.map_mmhg is not None:
            doc["map_mmhg"] = command.map_mmhg
    else:
        doc["type"] = "reset" if isinstance(command, Reset) else "discharge"
    return doc
