"""The declarative models of the three output topics: estimates, events, dead letters.

The worker builds its output documents from these Structs (``_codec.estimate_doc`` and friends), and
consumers can decode with them (``msgspec.json.decode(data, type=EstimateDoc)``); the JSON Schemas of
the contract are generated from them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

from bpstream.filters import Reason
from bpstream.models import Validity

from bpstream.stream.core import EventKind
from ._wire_types import (
    DEADLETTER,
    ESTIMATES,
    EVENTS,
    Base64,
    Count,
    DeadLetterReason,
    IsoTime,
    PatientId,
    Seq,
    ShortText,
)

__all__ = ["QuantityDoc", "QualityDoc", "ModelDoc", "CalibrationDoc", "EstimateDoc", "EventDoc", "SourceDoc",
           "DeadLetterDoc"]


class QuantityDoc(Struct, frozen=True, gc=False):
    """One pressure: value in mm[Hg] (UCUM), 1-sigma uncertainty sd when the model gives one (90 % interval
    = value +- 1.645 sd), IEEE 11073-10101 generic blood-pressure code and LOINC code."""

    value: float
    unit: Literal["mm[Hg]"]
    sd: float | None
    mdc_code: Literal[150017, 150018, 150019]
    mdc_ref_id: Literal["MDC_PRESS_BLD_SYS", "MDC_PRESS_BLD_DIA", "MDC_PRESS_BLD_MEAN"]
    loinc: Literal["8480-6", "8462-4", "8478-0"]


class QualityDoc(Struct, frozen=True, gc=False):
    """Input quality of the window: usable or not, the ECG and PPG scores (0-1), the input reasons."""

    input_usable: bool
    ecg: float | None
    ppg: float | None
    input_reasons: list[Reason]


class ModelDoc(Struct, frozen=True, gc=False):
    """The published estimator; weights_sha256: SHA-256 of its weights file (none for the baselines)."""

    name: str
    version: str
    weights_sha256: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")] | None


class CalibrationDoc(Struct, frozen=True, gc=False):
    """Calibration readings learned so far and the age (s) of the latest."""

    count: Count
    age_s: float | None


class EstimateDoc(Struct, frozen=True, gc=False):
    """bp.estimates.v1 (key = patient_id): one SBP/DBP/MAP estimate per window hop. A window the quality
    filters reject has validity invalid, its reasons and no numbers (sbp, dbp, map null). patient_id + seq
    identifies an estimate (seq never goes back for a patient id)."""

    schema: Literal[ESTIMATES]
    patient_id: PatientId
    bed: ShortText | None
    monitor_id: ShortText | None
    seq: Seq
    window_start: IsoTime
    window_end: IsoTime
    segment: Count
    method: Literal["estimated-ecg-ppg"]
    status: Literal["preliminary"]
    validity: Validity
    reasons: list[Reason]
    quality: QualityDoc
    sbp: QuantityDoc | None
    dbp: QuantityDoc | None
    map: QuantityDoc | None
    model: ModelDoc
    calibration: CalibrationDoc
    published_at: IsoTime


class EventDoc(Struct, frozen=True, gc=False):
    """bp.events.v1 (key = patient_id): a command outcome or a step event. at: the stream time it refers to;
    command_id: the command it answers (none for calibration_suggested and state resets)."""

    schema: Literal[EVENTS]
    patient_id: PatientId
    type: EventKind
    at: IsoTime | None
    reason: Reason | None
    command_id: ShortText | None
    detail: dict[str, float | str | bool | None]
    published_at: IsoTime


class SourceDoc(Struct, frozen=True, gc=False):
    """Where the failed message was read: topic, partition, offset and its key (UTF-8, invalid bytes replaced)."""

    topic: str
    partition: Count | None
    offset: Count | None
    key: str | None


class DeadLetterDoc(Struct, frozen=True, gc=False):
    """bp.deadletter.v1 (key = the original key): a message that failed to decode or validate, or that the
    step refused; detail names the field and the rule, never a value. payload_b64: its first 64 KiB."""

    schema: Literal[DEADLETTER]
    reason: DeadLetterReason
    detail: Annotated[str, Meta(max_length=500)]
    source: SourceDoc
    payload_b64: Base64
    payload_bytes: Count
    payload_truncated: bool
    failed_at: IsoTime
