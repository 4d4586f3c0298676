"""The quality gates the step applies, per patient: input (ECG/PPG), arterial label, cuff reading.

A thin adapter over bpstream.filters so the step reads the same whatever the filters' internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bpstream.filters import InputFilter, Reason, Reference, Window

if TYPE_CHECKING:
    from ._messages import Calibrate

__all__ = ["Gates", "InputVerdict"]


@dataclass(frozen=True)
class InputVerdict:
    usable: bool
    reasons: tuple[Reason, ...]
    ecg_score: float
    ppg_score: float
    ecg_hr_bpm: float | None = None
    ppg_hr_bpm: float | None = None


class Gates:
    """Per-patient quality gates (their running state lives here, learned attributes end in ``_``)."""

    def __init__(self, sampling_rate: float = 125.0):
        self.sampling_rate = sampling_rate
        self.input_filter_ = InputFilter(sampling_rate=sampling_rate)

    def state_dict(self) -> dict:
        return {"input": self.input_filter_.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.input_filter_.load_state_dict(state["input"])

    def input(self, window: Window) -> InputVerdict:
        q = self.input_filter_.update(window.ecg, window.ppg)
        return InputVerdict(
            usable=bool(q.usable[0]),
            reasons=tuple(q.reasons[0]),
            ecg_score=float(q.ecg_score[0]),
            ppg_score=float(q.ppg_score[0]),
            ecg_hr_bpm=_finite_or_none(q.ecg_hr_bpm[0]),
            ppg_hr_bpm=_finite_or_none(q.ppg_hr_bpm[0]),
        )

    def label(self, window: Window, quality: InputVerdict) -> Reference:
        from bpstream.filters._abp import abp_reference  # TODO(lead): LabelFilter when it lands

        return abp_reference(window.abp, sampling_rate=self.sampling_rate, t_s=window.t_end_s)

    def cuff(self, cmd: "Calibrate", stream_t_s: float | None, horizon_s: float) -> tuple[Reference | None, Reason | None]:
        sbp, dbp, mp = cmd.sbp_mmhg, cmd.dbp_mmhg, cmd.map_mmhg
        if not (40 <= sbp <= 260 and 20 <= dbp <= 160 and sbp - dbp >= 10) or (mp is not None and not dbp <= mp <= sbp):
            return None, Reason.CUFF_IMPLAUSIBLE
        if stream_t_s is not None and cmd.measured_at_s > stream_t_s + horizon_s:
            return None, Reason.CUFF_FUTURE
        if mp is None:
            mp = dbp + (sbp - dbp) / 3.0
        return Reference(float(sbp), float(dbp), float(mp), usable=True, t_s=cmd.measured_at_s, source=cmd.source), None


def _finite_or_none(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None
