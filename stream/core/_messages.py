"""Messages into the per-patient step and outputs out of it (pure data, decoded already)."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Mapping

from bpstream.filters import Chunk, Reason, Reference, Window, stateful
from bpstream.models import Estimate

__all__ = [
    "ChunkMessage",
    "Calibrate",
    "Reset",
    "Discharge",
    "Flush",
    "Message",
    "WindowResult",
    "EventKind",
    "Event",
    "DeadLetter",
    "Output",
]


@stateful("msg.chunk", version=1)
@dataclass(frozen=True)
class ChunkMessage:
    """A waveform chunk with its per-patient sequence number (for idempotency)."""

    seq: int
    chunk: Chunk


@stateful("msg.calibrate", version=1)
@dataclass(frozen=True)
class Calibrate:
    """A calibration reading (cuff or arterial line) measured at ``measured_at_s`` (stream time)."""

    command_id: str
    measured_at_s: float
    sbp_mmhg: float
    dbp_mmhg: float
    map_mmhg: float | None = None
    source: str = "cuff"  # "cuff" or "arterial"


@stateful("msg.reset", version=1)
@dataclass(frozen=True)
class Reset:
    command_id: str


@stateful("msg.discharge", version=1)
@dataclass(frozen=True)
class Discharge:
    command_id: str


@dataclass(frozen=True)
class Flush:
    """Apply the chunks held behind a missing seq now (gaps given up): the worker sends it for a patient
    whose stream has gone quiet with chunks held (stream time only moves with chunks)."""


Message = ChunkMessage | Calibrate | Reset | Discharge | Flush


@dataclass(frozen=True)
class WindowResult:
    """What the step knows about one window: quality, reference, every method's estimate."""

    seq: int  # per-patient estimate sequence number
    t_start_s: float
    t_end_s: float
    segment: int
    input_usable: bool
    input_reasons: tuple[Reason, ...]
    ecg_score: float
    ppg_score: float
    reference: Reference | None  # from the arterial waveform in the stream, after the label filter
    estimates: Mapping[str, Estimate]
    calibration_count: int
    calibration_age_s: float | None
    labels: tuple[Reference, ...] = ()  # labels learned right after this window's predictions
    calibration_suggested: bool = False  # the published estimate says pressure has left the calibration
    ecg_usable: bool = True  # the input gate's verdict per channel (input_usable needs both, and more)
    ppg_usable: bool = True
    # the window itself, only with PipelineConfig(keep_windows=True) (dataset building, the quality report)
    window: Window | None = field(default=None, repr=False, compare=False)


@stateful("msg.event_kind", version=1)
class EventKind(str, enum.Enum):
    CALIBRATION_ACCEPTED = "calibration_accepted"
    CALIBRATION_REJECTED = "calibration_rejected"
    PATIENT_RESET = "patient_reset"
    PATIENT_DISCHARGED = "patient_discharged"
    DUPLICATE_IGNORED = "duplicate_ignored"
    CALIBRATION_SUGGESTED = "calibration_suggested"


@stateful("msg.event", version=1)
@dataclass(frozen=True)
class Event:
    kind: EventKind
    t_s: float | None
    reason: Reason | None = None
    command_id: str | None = None
    detail: Mapping[str, float | str | None] = field(default_factory=dict)


@dataclass(frozen=True)
class DeadLetter:
    """The step's verdict that the message it was given goes to the dead-letter topic (with its reason);
    unlike a decode failure, the patient's state may still change (e.g. a counted run of far-ahead seqs)."""

    reason: Reason
    detail: str


Output = WindowResult | Event | DeadLetter
