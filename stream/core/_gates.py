"""The quality gates the step applies, per patient: input (ECG/PPG), arterial label, cuff reading.

A thin adapter over bpstream.filters so the step reads the same whatever the filters' internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

import numpy as np

from bpstream.filters import renames, stateful
from bpstream.filters import CuffReading, InputFilter, LabelFilter, Reason, Reference, Window, abp_reference, cuff_reference

if TYPE_CHECKING:
    from ._messages import Calibrate

__all__ = ["Gates", "InputVerdict", "LabelMode"]


class LabelMode(str, Enum):
    """Which arterial label gate the step applies."""

    FULL = "full"  # LabelFilter: jSQI on a rolling beat buffer, events, damping, cross-modal checks
    BASIC = "basic"  # the foundation gate only (jSQI physiological limits per window), for comparison


@dataclass(frozen=True)
class InputVerdict:
    usable: bool
    reasons: tuple[Reason, ...]
    ecg_score: float
    ppg_score: float
    ecg_hr_bpm: float | None = None
    ppg_hr_bpm: float | None = None
    ecg_usable: bool = True
    ppg_usable: bool = True


@stateful("stream.gates", version=2)  # v2: sampling_rate -> fs_hz
class Gates:
    """Per-patient quality gates (their running state lives here, learned attributes end in ``_``)."""

    def __init__(self, fs_hz: float = 125.0, label_mode: LabelMode = LabelMode.FULL):
        self.fs_hz = fs_hz
        self.label_mode = LabelMode(label_mode)  # stored as its value; LabelMode(...) on use
        self.input_filter_ = InputFilter(fs_hz=fs_hz)
        self.label_filter_ = LabelFilter(fs_hz=fs_hz)

    def input(self, window: Window, measured: tuple | None = None) -> InputVerdict:
        """``measured``: ``((fs_hz, thresholds), InputMeasures)`` of this window measured ahead in a batch
        (``_batch``), used when they were taken at this filter's rate and thresholds; the verdict is the
        same either way."""
        measures = None
        if measured is not None:
            f = self.input_filter_
            (fs_hz, thresholds), m = measured
            if m is not None and fs_hz == f.fs_hz and thresholds == f.thresholds:
                measures = m
        return _verdict(self.input_filter_.update(window.ecg, window.ppg, measures), 0)

    def inputs(self, windows: list[Window], measured: tuple) -> list[InputVerdict]:
        """The verdicts of consecutive windows of the patient, in stream order, from their measures as one
        batch (``((fs_hz, thresholds), InputMeasures)``): the verdicts ``input`` gives them one by one."""
        (fs_hz, thresholds), m = measured
        f = self.input_filter_
        if fs_hz != f.fs_hz or thresholds != f.thresholds:
            return [self.input(w) for w in windows]
        q = f.update(None, None, m)
        return [_verdict(q, r) for r in range(len(windows))]

    def label(self, window: Window, quality: InputVerdict, measured: tuple | None = None) -> Reference:
        """The arterial label of the window: jSQI on a rolling beat buffer, event masks, cross-checks
        against the ECG heart rate and (when the PPG passed its own quality) the PPG waveform.
        ``LabelMode.BASIC`` keeps only the foundation gate (jSQI physiological limits per window).
        ``measured``: ``(fs_hz, AbpMeasures)`` measured ahead in a batch (``_batch.measure_labels``); the
        label is the same either way."""
        if LabelMode(self.label_mode) is LabelMode.BASIC:
            return abp_reference(window.abp, fs_hz=self.fs_hz, t_s=window.t_end_s)
        measures = None
        if measured is not None:
            fs_hz = window.fs_hz if window.fs_hz and np.isfinite(window.fs_hz) else self.label_filter_.fs_hz
            if measured[0] == fs_hz:
                measures = measured[1]
        return self.label_filter_.update(window, ecg_hr_bpm=quality.ecg_hr_bpm, ppg=quality.ppg_hr_bpm is not None,
                                         measures=measures)

    def cuff(self, cmd: "Calibrate", stream_t_s: float | None, horizon_s: float) -> tuple[Reference | None, Reason | None]:
        """A calibration command's label, or None and the reason it is rejected (``filters.cuff_reference``:
        hard plausibility limits only, hypotension kept; not finite or more than ``horizon_s`` ahead of
        the patient's stream). Nearer readings wait for their window in the step."""
        reading = CuffReading(cmd.command_id, cmd.measured_at_s, cmd.sbp_mmhg, cmd.dbp_mmhg, cmd.map_mmhg, cmd.source)
        label = cuff_reference(reading, stream_t_s=stream_t_s, max_future_s=horizon_s)
        return (label, None) if label.usable else (None, label.reasons[0])


def _verdict(q, r: int) -> InputVerdict:
    """Row ``r`` of an ``InputQuality``."""
    return InputVerdict(usable=bool(q.usable[r]), reasons=tuple(q.reasons[r]), ecg_score=float(q.ecg_score[r]),
                        ppg_score=float(q.ppg_score[r]), ecg_hr_bpm=_finite_or_none(q.ecg_hr_bpm[r]),
                        ppg_hr_bpm=_finite_or_none(q.ppg_hr_bpm[r]), ecg_usable=bool(q.ecg_usable[r]),
                        ppg_usable=bool(q.ppg_usable[r]))


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


renames("stream.gates", from_version=1, old="sampling_rate", new="fs_hz")
