"""The declarative models of the two input topics: ``bp.waveforms.v1`` and ``bp.commands.v1``.

msgspec Structs: decoding a message's bytes into one of these checks every structural rule (types,
required fields, enums, integer bounds, the patient-id pattern, string lengths) in one pass in C;
unknown fields are ignored (consumers ignore unknown fields: adding an optional field keeps the
version), except in ``channels``, whose keys are the channel roles. ``_codec`` adds the rules that
need the settings, the clock or the samples (post-validation).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from msgspec import UNSET, Meta, Struct, UnsetType

from ._wire_types import (
    COMMANDS,
    WAVEFORMS,
    Base64,
    IsoTime,
    PatientId,
    Seq,
    ShortText,
)

__all__ = ["ChannelDoc", "ChannelsDoc", "WaveformDoc", "CalibrateDoc", "ResetDoc", "DischargeDoc", "CommandDoc",
           "ROLES", "ENCODINGS", "COMMAND_TYPES", "SOURCES"]

ROLES = ("ecg", "ppg", "abp")  # the fields of ChannelsDoc
ENCODINGS = ("float32", "int16")
COMMAND_TYPES = ("calibrate", "reset", "discharge")  # the tags of CommandDoc
SOURCES = ("cuff", "arterial")


class ChannelDoc(Struct, frozen=True, gc=False):
    """One channel's samples: base64 of little-endian float32 in physical units (every sample finite), or
    int16 with gain and offset, physical = (raw - offset) / gain (WFDB; raw -32768 = missing sample). At most
    BPSTREAM_MAX_FS_HZ (2000 Hz) and BPSTREAM_MAX_CHUNK_S (60 s) per chunk."""

    fs_hz: Annotated[float, Meta(gt=0, description="sampling rate (Hz), at most BPSTREAM_MAX_FS_HZ")]
    encoding: Literal[ENCODINGS]
    samples: Annotated[Base64, Meta(min_length=1)]
    unit: str | None = None
    gain: Annotated[float, Meta(description="int16: ADC gain, non-zero (required)")] | None = None
    offset: Annotated[float, Meta(description="int16: ADC offset (default 0)")] | None = None


class ChannelsDoc(Struct, frozen=True, forbid_unknown_fields=True, gc=False):
    """The chunk's channels: ecg and ppg required, abp optional, no others; every channel covers the same
    duration (samples / fs_hz agree to less than one sample period of the slowest channel and to less than
    0.1 s)."""

    ecg: ChannelDoc
    ppg: ChannelDoc
    abp: ChannelDoc | UnsetType = UNSET


class WaveformDoc(Struct, frozen=True, gc=False):
    """bp.waveforms.v1 (key = patient_id): one chunk of ECG + PPG (+ optional ABP) samples."""

    schema: Literal[WAVEFORMS]
    patient_id: PatientId
    seq: Seq
    start_time: IsoTime
    channels: ChannelsDoc
    bed: ShortText | None = None
    monitor_id: ShortText | None = None


class _Command(Struct, frozen=True, kw_only=True, tag_field="type", gc=False):
    schema: Literal[COMMANDS]
    patient_id: PatientId
    command_id: Annotated[ShortText, Meta(description="makes the command idempotent (repeats are ignored)")]
    issued_at: IsoTime
    operator: ShortText | None = None


class CalibrateDoc(_Command, tag="calibrate"):
    """bp.commands.v1 calibrate: a cuff or arterial reading measured at measured_at."""

    sbp_mmhg: float
    dbp_mmhg: float
    measured_at: IsoTime
    map_mmhg: float | None = None
    source: Literal[SOURCES] = "cuff"


class ResetDoc(_Command, tag="reset"):
    """bp.commands.v1 reset: the patient starts a fresh episode."""


class DischargeDoc(_Command, tag="discharge"):
    """bp.commands.v1 discharge: the patient leaves; a later waveform readmits them."""


CommandDoc = Union[CalibrateDoc, ResetDoc, DischargeDoc]
