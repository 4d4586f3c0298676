"""Versioned wire schemas of the Kafka topics, validated on decode.

Five JSON schemas, each message carrying its name and version in ``"schema"``:

- ``bp.waveforms.v1``  (in, key = patient id): one chunk of ECG + PPG (+ optional ABP) samples.
- ``bp.commands.v1``   (in, key = patient id): ``calibrate``, ``reset``, ``discharge``.
- ``bp.estimates.v1``  (out, key = patient id): one SBP/DBP/MAP estimate per window (hop).
- ``bp.events.v1``     (out, key = patient id): calibration accepted/rejected, reset, discharge, ...
- ``bp.deadletter.v1`` (out, key = original key): a message that failed to decode or validate.

Consumers ignore unknown fields; adding an optional field keeps the version, anything else bumps it.
Times on the wire are ISO 8601 UTC strings with microseconds (``2026-11-23T16:28:47.000000Z``);
inside bpstream they are float seconds since the epoch. The message models (msgspec Structs, one per
message type) are in ``_wire_in`` and ``_wire_out``; their JSON Schemas and the AsyncAPI document are
generated from them (``_contracts``, ``bpstream schemas``). This module holds the settings-dependent
rules (``Limits``: time range, sizes), times, and the command post-validation; ``_codec`` turns bytes into
models and samples into arrays.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from bpstream.filters import Reason

from bpstream.stream.core import MessageError
from bpstream.stream.core import Calibrate, Discharge, Reset
from ._wire_decode import convert
from ._wire_in import CalibrateDoc, CommandDoc, ResetDoc
from ._wire_types import (
    COMMANDS,
    DEADLETTER,
    ESTIMATES,
    EVENTS,
    PATIENT_ID_PATTERN,
    PATIENT_ID_RULE,
    SEQ_MAX,
    WAVEFORMS,
    finite,
)

__all__ = [
    "WAVEFORMS",
    "COMMANDS",
    "ESTIMATES",
    "EVENTS",
    "DEADLETTER",
    "QUANTITIES",
    "SEQ_MAX",
    "Limits",
    "CommandMessage",
    "to_iso",
    "from_iso",
    "check_patient_id",
    "command_message",
    "parse_command",
    "command_doc",
]

# estimate quantities: IEEE 11073-10101 generic (non-invasive/unspecified) blood pressure codes, LOINC
QUANTITIES = {
    "sbp": {"mdc_code": 150017, "mdc_ref_id": "MDC_PRESS_BLD_SYS", "loinc": "8480-6"},
    "dbp": {"mdc_code": 150018, "mdc_ref_id": "MDC_PRESS_BLD_DIA", "loinc": "8462-4"},
    "map": {"mdc_code": 150019, "mdc_ref_id": "MDC_PRESS_BLD_MEAN", "loinc": "8478-0"},
}
UNIT_MMHG = "mm[Hg]"  # UCUM
_PATIENT_RE = re.compile(PATIENT_ID_PATTERN)
T_MIN_DEFAULT_S = 946684800.0  # 2000-01-01T00:00:00Z


@dataclass(frozen=True)
class Limits:
    """Per-message limits applied on decode (from Settings)."""

    max_chunk_bytes: int = 1_000_000
    max_chunk_s: float = 60.0
    max_fs_hz: float = 2000.0
    t_min_s: float = T_MIN_DEFAULT_S  # no time on the wire before this (BPSTREAM_TIME_MIN)
    max_ahead_s: float = 86400.0  # ... nor later than the worker's clock plus this (BPSTREAM_TIME_MAX_AHEAD_S)
    max_depth: int = 8  # JSON nesting (objects and arrays); a waveform message needs 3
    max_command_bytes: int = 65536

    def check_time(self, t_s: float, field: str, now_s: float | None) -> float:
        """``t_s`` inside [t_min_s, now_s + max_ahead_s] (no upper bound when the caller has no clock)."""
        if not t_s >= self.t_min_s or (now_s is not None and t_s > now_s + self.max_ahead_s):
            raise MessageError(Reason.MSG_INVALID, f"{field} is outside the plausible time range "
                                                   "(BPSTREAM_TIME_MIN .. now + BPSTREAM_TIME_MAX_AHEAD_S)")
        return t_s


# -- time ------------------------------------------------------------------------------------------
def to_iso(t_s: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS.ffffffZ`` (UTC, microseconds)."""
    return datetime.fromtimestamp(t_s, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: Any, field: str = "time") -> float:
    """ISO 8601 with a UTC offset (``Z`` or ``+hh:mm``) -> epoch seconds. Naive times are refused."""
    if not isinstance(text, str):
        raise MessageError(Reason.MSG_INVALID, f"{field} must be an ISO 8601 string")
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00")) if len(text) <= 40 else None
        if dt is None:
            raise ValueError
    except ValueError:
        raise MessageError(Reason.MSG_INVALID, f"{field} is not an ISO 8601 time") from None  # never echo it
    if dt.tzinfo is None:
        raise MessageError(Reason.MSG_INVALID, f"{field} has no UTC offset")
    try:
        return dt.timestamp()
    except (OverflowError, ValueError):
        raise MessageError(Reason.MSG_INVALID, f"{field} is outside the plausible time range") from None


# -- field checks ----------------------------------------------------------------------------------
def check_patient_id(value: Any) -> str:
    """The patient-id rule of the wire models, for ids bpstream itself writes (encoders, CLI)."""
    if not isinstance(value, str) or not _PATIENT_RE.search(value):
        raise MessageError(Reason.MSG_INVALID, f"patient_id must be {PATIENT_ID_RULE}")
    return value


# -- commands --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandMessage:
    patient_id: str
    issued_at_s: float
    operator: str | None
    command: Calibrate | Reset | Discharge


def command_message(doc: CommandDoc, limits: Limits = Limits(), now_s: float | None = None) -> CommandMessage:
    """A decoded ``bp.commands.v1`` model -> CommandMessage: the post-validation (time range from the
    caller's clock, ``now_s``, the IO layer's; finite numbers)."""
    issued = limits.check_time(from_iso(doc.issued_at, "issued_at"), "issued_at", now_s)
    if isinstance(doc, CalibrateDoc):
        measured = limits.check_time(from_iso(doc.measured_at, "measured_at"), "measured_at", now_s)
        for name in ("sbp_mmhg", "dbp_mmhg", "map_mmhg"):
            if not finite(getattr(doc, name)):
                raise MessageError(Reason.MSG_INVALID, f"{name} must be a finite number")
        cmd: Calibrate | Reset | Discharge = Calibrate(
            command_id=doc.command_id, measured_at_s=measured, sbp_mmhg=float(doc.sbp_mmhg),
            dbp_mmhg=float(doc.dbp_mmhg), map_mmhg=None if doc.map_mmhg is None else float(doc.map_mmhg),
            source=doc.source)
    elif isinstance(doc, ResetDoc):
        cmd = Reset(doc.command_id)
    else:
        cmd = Discharge(doc.command_id)
    return CommandMessage(doc.patient_id, issued, doc.operator, cmd)


def parse_command(doc: Any, limits: Limits = Limits(), now_s: float | None = None) -> CommandMessage:
    """A ``bp.commands.v1`` document already parsed into dicts -> CommandMessage (raises MessageError)."""
    return command_message(convert(doc, CommandDoc, COMMANDS), limits, now_s)


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
