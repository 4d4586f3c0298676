"""Plain data types shared by every layer: chunks in, windows and references out."""

from __future__ import annotations

from ._stateful import stateful

import enum
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

__all__ = ["Chunk", "Window", "Reference", "Reason", "Role"]


@stateful("filters.role", version=1)
class Role(str, enum.Enum):
    """What a waveform channel is, whatever the monitor calls it."""

    ECG = "ecg"
    PPG = "ppg"
    ABP = "abp"


@stateful("filters.reason", version=1)
class Reason(str, enum.Enum):
    """Why a window, a label or an estimate was rejected or down-graded.

    One enum for every layer, so a reason travels unchanged from a filter to the estimates topic.
    The value is the stable wire name (used in JSON and in ``bp.estimates.v1``).
    """

    # input (ECG/PPG) integrity and quality
    ECG_MISSING = "ecg_missing"
    PPG_MISSING = "ppg_missing"
    ECG_NAN = "ecg_nan"
    PPG_NAN = "ppg_nan"
    ECG_FLAT = "ecg_flat"
    PPG_FLAT = "ppg_flat"
    ECG_CLIPPED = "ecg_clipped"
    PPG_CLIPPED = "ppg_clipped"
    ECG_LOW_AMPLITUDE = "ecg_low_amplitude"
    PPG_LOW_PERFUSION = "ppg_low_perfusion"
    ECG_DETECTOR_DISAGREE = "ecg_detector_disagree"
    ECG_HR_IMPLAUSIBLE = "ecg_hr_implausible"
    ECG_RR_IRREGULAR = "ecg_rr_irregular"
    ECG_GAP = "ecg_gap"
    ECG_TEMPLATE = "ecg_template"
    ECG_KURTOSIS = "ecg_kurtosis"
    ECG_BASELINE_WANDER = "ecg_baseline_wander"
    PPG_SKEWNESS = "ppg_skewness"
    PPG_HR_IMPLAUSIBLE = "ppg_hr_implausible"
    PPG_RR_IRREGULAR = "ppg_rr_irregular"
    PPG_GAP = "ppg_gap"
    PPG_TEMPLATE = "ppg_template"
    HR_ECG_PPG_DISAGREE = "hr_ecg_ppg_disagree"
    # arterial label quality
    ABP_MISSING = "abp_missing"
    ABP_NAN = "abp_nan"
    ABP_TOO_FEW_BEATS = "abp_too_few_beats"
    ABP_BEATS_IMPLAUSIBLE = "abp_beats_implausible"
    ABP_BEAT_TO_BEAT = "abp_beat_to_beat"
    ABP_SLOPE_NOISE = "abp_slope_noise"
    ABP_FLUSH = "abp_flush"
    ABP_ZEROING = "abp_zeroing"
    ABP_BLOOD_SAMPLING = "abp_blood_sampling"
    ABP_DAMPED = "abp_damped"
    ABP_OFFSET_STEP = "abp_offset_step"
    ABP_PPG_DISAGREE = "abp_ppg_disagree"
    ABP_HR_ECG_DISAGREE = "abp_hr_ecg_disagree"
    ABP_FLAT = "abp_flat"
    ABP_CLIPPED = "abp_clipped"
    # cuff labels and commands
    CUFF_IMPLAUSIBLE = "cuff_implausible"
    CUFF_DUPLICATE = "cuff_duplicate"
    CUFF_STALE = "cuff_stale"
    CUFF_FUTURE = "cuff_future"
    CUFF_NO_WINDOW = "cuff_no_window"
    CUFF_CANCELLED = "cuff_cancelled"  # reset or discharge came before the reading's window
    CUFF_QUEUE_FULL = "cuff_queue_full"  # too many readings already wait for their windows
    # model / service
    UNCALIBRATED = "uncalibrated"
    CALIBRATION_OLD = "calibration_old"
    MODEL_ROLLED_BACK = "model_rolled_back"
    ADAPTATION_FROZEN = "adaptation_frozen"
    # messages on Kafka (dead-letter reasons; added for the streaming service)
    MSG_NOT_JSON = "msg_not_json"
    MSG_SCHEMA_VERSION = "msg_schema_version"
    MSG_INVALID = "msg_invalid"
    MSG_NAN_SAMPLES = "msg_nan_samples"
    MSG_OVERSIZED = "msg_oversized"
    MSG_UNKNOWN_PATIENT = "msg_unknown_patient"
    MSG_DUPLICATE = "msg_duplicate"
    MSG_STEP_FAILED = "msg_step_failed"
    STATE_UNREADABLE = "state_unreadable"  # a stored patient state this code cannot read: the patient is reset
    MSG_SEQ_GAP = "msg_seq_gap"  # seq far ahead of the patient's stream (unconfirmed jump)
    MSG_LATE = "msg_late"  # a chunk whose place in the stream was given up before it arrived
    # command outcomes (event reasons)
    ALREADY_DISCHARGED = "already_discharged"


@stateful("filters.chunk", version=1)
@dataclass(frozen=True)
class Chunk:
    """A piece of one patient's waveform stream, as a bedside monitor delivers it.

    ``signals`` maps a role (``"ecg"``, ``"ppg"``, optionally ``"abp"``) to its samples in
    physical units (mV, PPG units, mmHg); ``fs_hz`` gives each channel's sampling rate.
    ``t_start_s`` is the stream time of the first sample (seconds, e.g. UTC epoch or record time).
    """

    t_start_s: float
    fs_hz: Mapping[str, float]
    signals: Mapping[str, np.ndarray]

    def duration_s(self) -> float:
        role = next(iter(self.signals))
        return len(self.signals[role]) / float(self.fs_hz[role])


@stateful("filters.window", version=1)
@dataclass(frozen=True)
class Window:
    """One analysis window at the model rate: ECG and PPG, and the arterial waveform if present.

    Arrays are float32, all of the same length ``round(window_s * fs_hz)``.
    ``segment`` counts stream resets (gaps); windows of different segments never overlap in data.
    """

    t_start_s: float
    t_end_s: float
    fs_hz: float
    ecg: np.ndarray
    ppg: np.ndarray
    abp: np.ndarray | None = None
    segment: int = 0

    @property
    def n_samples(self) -> int:
        return int(self.ecg.shape[0])


@stateful("filters.reference", version=1)
@dataclass(frozen=True)
class Reference:
    """A blood-pressure label for one window (from the arterial waveform or a cuff), in mmHg.

    ``usable`` is False when the label must not be learned from nor scored; ``reasons`` says why.
    A value may be None when only part of the label is trustworthy (a damped line keeps its MAP).
    """

    sbp_mmhg: float | None
    dbp_mmhg: float | None
    map_mmhg: float | None
    usable: bool
    reasons: tuple[Reason, ...] = ()
    good_beat_fraction: float = 0.0
    n_beats: int = 0
    hr_bpm: float | None = None
    t_s: float | None = None
    source: str = "arterial"
    extras: Mapping[str, float] = field(default_factory=dict)
