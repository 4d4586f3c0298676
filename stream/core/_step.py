"""The pure per-patient step: ``step(state, message) -> (state, outputs)``.

The very same code runs in ``bpstream validate`` (in-process) and in the Kafka workers. No IO, no
clock, no globals: a ``Pipeline`` holds the configuration (window geometry, which estimators, the
arterial calibration schedule) and the state holds everything learned about one patient.

Per window, in this order (prequential): input quality -> every estimator predicts -> the label
filter judges the arterial reference -> any calibration due now is learned -> otherwise the
window may feed self-supervised adaptation.

Chunks are put in ``seq`` order first (``_order``: repeats, a bounded reorder buffer, late and
far-ahead chunks); a calibration reading is paired by stream content alone and, when its command
arrives after its window, learned as if it had come on time (``_journal``). The README's service
section states these rules. The configuration and the per-patient state are in ``_patient``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Callable, Hashable, Mapping, MutableMapping, Sequence

from bpstream.filters import Reason, Reference, Window, Windower
from bpstream.models import Estimate, Estimator, Validity, make_estimator

from ._batch import step_many
from ._gates import Gates, InputVerdict
from ._journal import record as journal_record, rewind, snapshot_due, take_snapshot, target as journal_target
from ._order import admit, close_episode, flush as flush_held
from ._messages import (
    Calibrate,
    ChunkMessage,
    Discharge,
    Event,
    EventKind,
    Flush,
    Message,
    Output,
    Reset,
    WindowResult,
)
from ._patient import PatientState, PipelineConfig
from ._suggest import step as suggest_step

__all__ = ["Pipeline", "PatientState", "PipelineConfig"]


class Pipeline:
    """Configuration plus the step. ``factories`` overrides how each method's estimator is built."""

    def __init__(self, config: PipelineConfig = PipelineConfig(),
                 factories: Mapping[str, Callable[[], Estimator]] | None = None):
        self.config = config
        self.factories = dict(factories or {})

    # -- state ---------------------------------------------------------------------------------
    def new_state(self) -> PatientState:
        c = self.config
        estimators = self._fresh_estimators()
        return PatientState(
            windower=Windower(c.window_s, c.hop_s, c.fs_hz),
            estimators=estimators,
            gates=Gates(fs_hz=c.fs_hz, label_mode=c.label_filter),
        )

    # -- the step ------------------------------------------------------------------------------
    def step(self, state: PatientState | None, message: Message) -> tuple[PatientState, list[Output]]:
        if state is None:
            state = self.new_state()
        if isinstance(message, ChunkMessage):
            return self._chunk(state, message)
        if isinstance(message, Flush):
            return state, [o for chunk in flush_held(state, self.config) for o in self._apply(state, chunk)]
        if isinstance(message, (Calibrate, Reset, Discharge)):
            if message.command_id in state.seen_commands or any(c == message.command_id for c, _ in state.pending):
                return state, [Event(EventKind.DUPLICATE_IGNORED, state.last_t_end_s, command_id=message.command_id)]
            state.seen_commands = (state.seen_commands + [message.command_id])[-self.config.max_seen_commands:]
            if isinstance(message, Discharge) and state.discharged:
                # nothing to discharge: answered; its id is remembered (so its redelivery after a readmission
                # is a repeat, never a discharge of the readmitted patient)
                return state, [Event(EventKind.DUPLICATE_IGNORED, state.last_t_end_s, Reason.ALREADY_DISCHARGED,
                                     message.command_id)]
        if isinstance(message, Calibrate):
            return state, self._calibrate(state, message)
        if isinstance(message, (Reset, Discharge)):
            return self._close(state, message)
        raise TypeError(f"not a step message: {type(message).__name__}")

    def step_many(self, states: MutableMapping[Hashable, PatientState | None],
                  messages: Sequence[tuple[Hashable, Message]]) -> list[list[Output]]:
        """``(patient key, message)`` pairs in order, each patient's state in ``states`` (None or absent:
        new; replaced in place by the state after its last message): the outputs of each message, exactly
        as ``step`` one message at a time gives them, with the windows of runs of chunks cut once and
        measured together (``_batch``). Raises ``ChunkError`` before changing anything when a chunk of a
        run is refused (``check`` each message first to leave out just that one)."""
        return step_many(self, states, messages)

    def check(self, message: Message) -> None:
        """Raise ``ChunkError`` when the step would refuse this chunk (changes nothing)."""
        if isinstance(message, ChunkMessage):
            Windower.check_chunk(message.chunk)

    def _close(self, state: PatientState, cmd: Reset | Discharge) -> tuple[PatientState, list[Output]]:
        """Reset or discharge: what was received is applied first (held chunks, gaps given up), readings
        still waiting for their window are rejected ``cuff_cancelled``, then a fresh state goes on with
        the estimate seq, the command ids and the old episode's position (to recognise its repeats)."""
        outputs: list[Output] = []
        for chunk in flush_held(state, self.config):
            outputs.extend(self._apply(state, chunk))
        t = state.last_t_end_s
        outputs += [Event(EventKind.CALIBRATION_REJECTED, t, Reason.CUFF_CANCELLED, cid) for cid, _ in state.pending]
        fresh = self.new_state()
        fresh.out_seq, fresh.seen_commands = state.out_seq, state.seen_commands
        close_episode(state, fresh)
        discharge = isinstance(cmd, Discharge)
        fresh.discharged = discharge
        kind = EventKind.PATIENT_DISCHARGED if discharge else EventKind.PATIENT_RESET
        outputs.append(Event(kind, t, command_id=cmd.command_id))
        return fresh, outputs

    def _chunk(self, state: PatientState, msg: ChunkMessage) -> tuple[PatientState, list[Output]]:
        self.check(msg)  # raises ChunkError before any state changes
        outputs, windows = self.cut(state, msg)
        for window in windows:
            outputs.extend(self.decide(state, window))
        return state, outputs

    def _apply(self, state: PatientState, chunk) -> list[Output]:
        return [o for window in self._cut_chunk(state, chunk) for o in self.decide(state, window)]

    # -- the two halves of a chunk's step (step_many runs them in separate passes) ---------------------
    def cut(self, state: PatientState, msg: ChunkMessage) -> tuple[list[Output], list[Window]]:
        """Put the chunk in the patient's order and cut the windows it completes (not yet decided); the
        outputs of ordering (repeats, late or far-ahead chunks). ``state.last_t_end_s`` already says where
        the windows end, as deciding them will."""
        chunks, outputs = admit(state, msg, self.config, state.last_t_end_s)
        windows = [w for chunk in chunks for w in self._cut_chunk(state, chunk)]
        if windows:
            state.last_t_end_s = windows[-1].t_end_s
        return outputs, windows

    def _cut_chunk(self, state: PatientState, chunk) -> list[Window]:
        windows = state.windower.update(chunk)
        state.discharged = False
        if state.t_origin_s is None:
            state.t_origin_s = float(chunk.t_start_s)
            state.next_due_s = self.config.arterial_schedule.first_s()
        return windows

    def decide(self, state: PatientState, window: Window, inputs: tuple | None = None,
               labels: tuple | None = None, verdict: InputVerdict | None = None) -> list[Output]:
        """One window of the patient, in stream order: gates, estimates, calibration, adaptation.
        ``inputs``: ``((fs_hz, thresholds), InputMeasures)`` and ``labels``: ``(fs_hz, AbpMeasures)`` measured
        ahead in a batch (``_batch``), or ``verdict``: the input gate's verdict on this window, already taken
        (``Gates.inputs``, in stream order); the outputs are the same with or without them."""
        c = self.config
        quality = verdict if verdict is not None else state.gates.input(window, inputs)
        reference = None
        if window.abp is not None:
            reference = state.gates.label(window, quality, labels)
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
        # readings waiting for their window: the first usable window ending at or after the reading, within
        # the tolerance (the same rule _journal.target applies to a reading that arrives after its window)
        still: list[tuple[str, Reference]] = []
        for command_id, label in state.pending:
            since = window.t_end_s - label.t_s
            if since < 0:
                still.append((command_id, label))
            elif quality.usable and since <= c.pair_tolerance_s:
                labels.append((command_id, label))
            elif since > c.pair_tolerance_s:
                outputs.append(Event(EventKind.CALIBRATION_REJECTED, window.t_end_s, Reason.CUFF_NO_WINDOW, command_id))
            else:
                still.append((command_id, label))
        state.pending = still
        snapshot = take_snapshot(state) if snapshot_due(state, c.late_pairing_windows) else None
        for command_id, label in labels:
            self._learn(state, window, label)
            outputs.append(Event(EventKind.CALIBRATION_ACCEPTED, window.t_end_s, command_id=command_id,
                                 detail={"source": label.source, "t_s": label.t_s}))
        if quality.usable and not labels:
            for est in state.estimators.values():
                est.learn_unlabeled(window)
        journal_record(state, window, quality.usable, labels, state.windower.hop_n, snapshot)
        flagged = suggest_step(state, c.methods[:1], c.suggest, estimates, quality.usable, age, window.t_end_s,
                                outputs)
        state.n_windows += 1
        state.out_seq += 1
        outputs.insert(0, WindowResult(
            seq=state.out_seq, t_start_s=window.t_start_s, t_end_s=window.t_end_s, segment=window.segment,
            input_usable=quality.usable, input_reasons=quality.reasons,
            ecg_score=quality.ecg_score, ppg_score=quality.ppg_score,
            reference=reference, estimates=estimates, calibration_count=state.calibrations,
            calibration_age_s=age, labels=tuple(label for _, label in labels), calibration_suggested=flagged,
            ecg_usable=quality.ecg_usable, ppg_usable=quality.ppg_usable,
            window=window if c.keep_windows else None,
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
        """A reading: rejected at once (implausible, future), held for its window, or, when its window has
        passed already, learned at that window as if it had come on time (``_journal.rewind``)."""
        label, reason = state.gates.cuff(cmd, stream_t_s=state.last_t_end_s, horizon_s=self.config.future_horizon_s)
        if label is None:
            return [Event(EventKind.CALIBRATION_REJECTED, state.last_t_end_s, reason, cmd.command_id)]
        t = cmd.measured_at_s
        verdict, i = journal_target(state, t, self.config.pair_tolerance_s)
        if verdict == "wait":
            if len(state.pending) >= self.config.max_waiting_readings:  # bounded: the state stays small
                return [Event(EventKind.CALIBRATION_REJECTED, state.last_t_end_s, Reason.CUFF_QUEUE_FULL,
                              cmd.command_id)]
            state.pending = state.pending + [(cmd.command_id, label)]  # paired when its window arrives
            return []
        if verdict == "stale":
            return [Event(EventKind.CALIBRATION_REJECTED, state.last_t_end_s, Reason.CUFF_STALE, cmd.command_id)]
        at = state.journal[i]["t_end_s"]
        if verdict == "no_window":
            return [Event(EventKind.CALIBRATION_REJECTED, at, Reason.CUFF_NO_WINDOW, cmd.command_id)]
        rewind(state, i, cmd.command_id, label, self._fresh_estimators, self.config.fs_hz)
        return [Event(EventKind.CALIBRATION_ACCEPTED, at, command_id=cmd.command_id,
                      detail={"source": label.source, "t_s": t, "late_s": state.last_t_end_s - t})]

    def _fresh_estimators(self) -> dict[str, Estimator]:
        c = self.config
        return {m: (self.factories[m]() if m in self.factories else make_estimator(m)) for m in c.methods}


def _timed(reference: Reference, t_s: float) -> Reference:
    return replace(reference, t_s=t_s)
