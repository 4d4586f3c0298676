"""The pure per-patient step: ``step(state, message) -> (state, outputs)``.

The very same code runs in ``bpstream validate`` (in-process) and in the Kafka workers. No IO, no
clock, no globals: a ``Pipeline`` holds the configuration (window geometry, which estimators, the
arterial calibration schedule) and the state holds everything learned about one patient.

Per window, in this order (prequential): input quality -> every estimator predicts -> the label
filter judges the arterial reference -> any calibration due now is learned -> otherwise the
window may feed self-supervised adaptation.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np

from bpstream.filters import QualityThresholds, Reason, Reference, Window, Windower
from bpstream.models import Estimate, Estimator, Validity, make_estimator

from . import _gates
from ._messages import (
    Calibrate,
    ChunkMessage,
    Discharge,
    Event,
    EventKind,
    Message,
    Output,
    Reset,
    WindowResult,
)
from ._schedule import Schedule

__all__ = ["Pipeline", "PatientState", "PipelineConfig"]


@dataclass(frozen=True)
class PipelineConfig:
    window_s: float = 10.0
    hop_s: float = 2.0
    fs_hz: float = 125.0
    methods: tuple[str, ...] = ("carry_forward",)  # the first is the one a service publishes
    arterial_schedule: Schedule = Schedule.off()
    history_windows: int = 2  # recent usable windows (ECG+PPG in float16) kept to pair late calibrations
    pair_tolerance_s: float = 30.0  # a reading waits at most this long for a usable window
    future_horizon_s: float = 600.0  # a reading further ahead of the stream is rejected
    questionable_after_s: float = 4 * 3600.0  # calibration older than this -> questionable
    max_seen_commands: int = 256
    label_filter: str = "full"  # "full" (LabelFilter) or "basic" (jSQI limits per window only)


@dataclass
class PatientState:
    windower: Windower
    estimators: dict[str, Estimator]
    gates: _gates.Gates
    last_seq: int = -1
    out_seq: int = 0
    seen_commands: list[str] = field(default_factory=list)
    t_origin_s: float | None = None
    next_due_s: float | None = None  # next arterial calibration, seconds after t_origin_s
    calibrations: int = 0
    last_calibration_t_s: float | None = None
    last_t_end_s: float | None = None
    pending: list[tuple[str, Reference]] = field(default_factory=list)  # (command id, label) awaiting their window
    history: list[Window] = field(default_factory=list)


class Pipeline:
    """Configuration plus the step. ``factories`` overrides how each method's estimator is built."""

    def __init__(self, config: PipelineConfig = PipelineConfig(),
                 factories: Mapping[str, Callable[[], Estimator]] | None = None):
        self.config = config
        self.factories = dict(factories or {})
        self.premeasured: dict = {}  # window content -> input measures, see premeasure()
        self.premeasured_labels: dict = {}  # window content -> arterial measures, see premeasure()

    # -- state ---------------------------------------------------------------------------------
    def new_state(self) -> PatientState:
        c = self.config
        estimators = {m: (self.factories[m]() if m in self.factories else make_estimator(m)) for m in c.methods}
        return PatientState(
            windower=Windower(c.window_s, c.hop_s, c.fs_hz),
            estimators=estimators,
            gates=_gates.Gates(sampling_rate=c.fs_hz, label_mode=c.label_filter),
        )

    def dumps(self, state: PatientState) -> bytes:
        from ._state_codec import state_to_bytes

        return state_to_bytes(state)

    def loads(self, data: bytes) -> PatientState:
        from ._state_codec import state_from_bytes

        return state_from_bytes(data, self)

    # -- batched input measures ----------------------------------------------------------------
    def premeasure(self, windows: list[Window]) -> None:
        """Measure ``windows`` in batches ahead of stepping them (``bpstream.stream._premeasure``).

        The input gate then takes a window's measures from this memo; verdicts and outputs are the
        same as without it, only cheaper. Call ``clear_premeasured()`` when the batch is done."""
        from ._premeasure import measure_labels, measure_windows, window_key

        fs_hz, thresholds = self.config.fs_hz, QualityThresholds()  # what every patient's InputFilter uses
        keys = [window_key(w) for w in windows]
        for key, m in measure_windows(windows, fs_hz, thresholds, keys=keys).items():
            self.premeasured[key] = (fs_hz, thresholds, m)
        if self.config.label_filter == "full":
            self.premeasured_labels.update(measure_labels(windows, keys))

    def clear_premeasured(self) -> None:
        self.premeasured = {}
        self.premeasured_labels = {}

    # -- the step ------------------------------------------------------------------------------
    def step(self, state: PatientState | None, message: Message) -> tuple[PatientState, list[Output]]:
        if state is None:
            state = self.new_state()
        if isinstance(message, ChunkMessage):
            return self._chunk(state, message)
        if isinstance(message, (Calibrate, Reset, Discharge)):
            if message.command_id in state.seen_commands:
                return state, [Event(EventKind.DUPLICATE_IGNORED, state.last_t_end_s, command_id=message.command_id)]
            state.seen_commands = (state.seen_commands + [message.command_id])[-self.config.max_seen_commands:]
        if isinstance(message, Calibrate):
            return state, self._calibrate(state, message)
        if isinstance(message, Reset):
            fresh = self.new_state()
            fresh.last_seq, fresh.out_seq, fresh.seen_commands = state.last_seq, state.out_seq, state.seen_commands
            return fresh, [Event(EventKind.PATIENT_RESET, state.last_t_end_s, command_id=message.command_id)]
        if isinstance(message, Discharge):
            fresh = self.new_state()
            fresh.seen_commands = state.seen_commands
            return fresh, [Event(EventKind.PATIENT_DISCHARGED, state.last_t_end_s, command_id=message.command_id)]
        raise TypeError(f"not a step message: {type(message).__name__}")

    def _chunk(self, state: PatientState, msg: ChunkMessage) -> tuple[PatientState, list[Output]]:
        if msg.seq <= state.last_seq:
            return state, [Event(EventKind.DUPLICATE_IGNORED, state.last_t_end_s, detail={"seq": msg.seq})]
        windows = state.windower.update(msg.chunk)  # raises ChunkError before any state changes
        state.last_seq = msg.seq
        if state.t_origin_s is None:
            state.t_origin_s = float(msg.chunk.t_start_s)
            state.next_due_s = self.config.arterial_schedule.first_s()
        outputs: list[Output] = []
        for window in windows:
            outputs.extend(self._window(state, window))
        return state, outputs

    def _window(self, state: PatientState, window: Window) -> list[Output]:
        c = self.config
        key = None
        if self.premeasured or self.premeasured_labels:
            from ._premeasure import window_key

            key = window_key(window)
        quality = state.gates.input(window, self.premeasured, key=key)
        reference = None
        if window.abp is not None:
            reference = state.gates.label(window, quality, self.premeasured_labels, key=key)
        age = None if state.last_calibration_t_s is None else window.t_end_s - state.last_calibration_t_s
        if quality.usable:
            estimates = {m: self._grade(e.predict_one(window), age) for m, e in state.estimators.items()}
        else:
            bad = Estimate.empty(Validity.INVALID, quality.reasons)
            estimates = {m: bad for m in state.estimators}
        state.last_t_end_s = window.t_end_s
        outputs: list[Output] = []
        labels: list[tuple[str | None, Reference]] = []
        # arterial calibration from the stream's own reference, on the configured schedule
        elapsed = window.t_end_s - (state.t_origin_s or 0.0)
        if state.next_due_s is not None and elapsed >= state.next_due_s and quality.usable \
                and reference is not None and reference.usable:
            labels.append((None, _timed(reference, window.t_end_s)))
            state.next_due_s = c.arterial_schedule.after(state.next_due_s, elapsed)
        # pending readings whose time has come
        still: list[tuple[str, Reference]] = []
        for command_id, label in state.pending:
            if label.t_s is not None and label.t_s > window.t_end_s:
                still.append((command_id, label))
            elif quality.usable:
                labels.append((command_id, label))
            elif label.t_s is not None and window.t_end_s - label.t_s > c.pair_tolerance_s:
                outputs.append(Event(EventKind.CALIBRATION_REJECTED, window.t_end_s, Reason.CUFF_NO_WINDOW, command_id))
            else:
                still.append((command_id, label))
        state.pending = still
        for command_id, label in labels:
            self._learn(state, window, label)
            outputs.append(Event(EventKind.CALIBRATION_ACCEPTED, window.t_end_s, command_id=command_id,
                                 detail={"source": label.source, "t_s": label.t_s}))
        if quality.usable and not labels:
            for est in state.estimators.values():
                est.learn_unlabeled(window)
        if quality.usable and c.history_windows > 0:
            state.history = (state.history + [_compact(window)])[-c.history_windows:]
        state.out_seq += 1
        outputs.insert(0, WindowResult(
            seq=state.out_seq, t_start_s=window.t_start_s, t_end_s=window.t_end_s, segment=window.segment,
            input_usable=quality.usable, input_reasons=quality.reasons,
            ecg_score=quality.ecg_score, ppg_score=quality.ppg_score,
            reference=reference, estimates=estimates, calibration_count=state.calibrations,
            calibration_age_s=age, labels=tuple(label for _, label in labels),
        ))
        return outputs

    def _grade(self, est: Estimate, age_s: float | None) -> Estimate:
        if est.validity == Validity.VALID and est.has_numbers and age_s is not None \
                and age_s > self.config.questionable_after_s:
            return Estimate(est.sbp_mmhg, est.dbp_mmhg, est.map_mmhg, est.sbp_sd_mmhg, est.dbp_sd_mmhg,
                            est.map_sd_mmhg, Validity.QUESTIONABLE, est.reasons + (Reason.CALIBRATION_OLD,))
        return est

    def _learn(self, state: PatientState, window: Window, label: Reference) -> None:
        for est in state.estimators.values():
            est.learn_one(window, label)
        state.calibrations += 1
        state.last_calibration_t_s = label.t_s if label.t_s is not None else window.t_end_s

    def _calibrate(self, state: PatientState, cmd: Calibrate) -> list[Output]:
        label, reason = state.gates.cuff(cmd, stream_t_s=state.last_t_end_s, horizon_s=self.config.future_horizon_s)
        if label is None:
            return [Event(EventKind.CALIBRATION_REJECTED, state.last_t_end_s, reason, cmd.command_id)]
        t = cmd.measured_at_s
        if state.last_t_end_s is None or t > state.last_t_end_s:
            state.pending = state.pending + [(cmd.command_id, label)]  # paired when its window arrives
            return []
        # late: pair with the newest usable window in the history that covers the reading's time
        for window in reversed(state.history):
            if window.t_start_s <= t <= window.t_end_s:
                self._learn(state, _expand(window), label)
                return [Event(EventKind.CALIBRATION_ACCEPTED, state.last_t_end_s, command_id=cmd.command_id,
                              detail={"source": label.source, "t_s": t, "late_s": state.last_t_end_s - t})]
        return [Event(EventKind.CALIBRATION_REJECTED, state.last_t_end_s, Reason.CUFF_STALE, cmd.command_id)]


def _timed(reference: Reference, t_s: float) -> Reference:
    return replace(reference, t_s=t_s)


def _compact(window: Window) -> Window:
    """A history copy: ECG and PPG as float16, no arterial waveform (keeps the state small)."""
    return replace(window, ecg=window.ecg.astype(np.float16), ppg=window.ppg.astype(np.float16), abp=None)


def _expand(window: Window) -> Window:
    return replace(window, ecg=window.ecg.astype(np.float32), ppg=window.ppg.astype(np.float32))
