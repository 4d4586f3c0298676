"""The pure per-patient step: predict before learning, idempotency, calibration pairing."""

from __future__ import annotations

import neurokit2 as nk
import numpy as np
import pytest

from bpstream.filters import Chunk, Reference, Window
from bpstream.models import Estimate, Estimator, register
from bpstream.stream.core._messages import Calibrate, ChunkMessage, EventKind, Reset, WindowResult
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.core._state_codec import state_from_bytes, state_to_bytes
from bpstream.stream.core._step import Pipeline, PipelineConfig

FS = 125.0


class Spy(Estimator):
    """Logs every call; predicts the mean of labels learned so far (NaN-free)."""

    name = "spy"

    def __init__(self):
        self.log_: list = []
        self.labels_: list = []

    def predict_one(self, window: Window) -> Estimate:
        self.log_.append(("predict", window.t_end_s))
        v = float(np.mean(self.labels_)) if self.labels_ else None
        return Estimate(v, v, v)

    def learn_one(self, window: Window, label: Reference) -> None:
        self.log_.append(("learn", window.t_end_s, label.t_s))
        self.labels_.append(label.sbp_mmhg)


register("spy", Spy)


def _chunks(seconds: float, chunk_s: float = 2.0, t0: float = 0.0, sbp_jump_at: float | None = None):
    """Simulated clean ECG/PPG (NeuroKit2, 70 bpm) and ABP pulses, 120/70 mmHg (160/70 after ``sbp_jump_at``)."""
    n = int(seconds * FS)
    rng = np.random.default_rng(0)
    ecg = nk.ecg_simulate(duration=seconds, sampling_rate=FS, heart_rate=70, heart_rate_std=0, random_state=0, noise=0.0)
    ecg = ecg[:n] + 0.01 * rng.standard_normal(n)
    ppg = nk.ppg_simulate(duration=seconds, sampling_rate=FS, heart_rate=70, random_state=0, motion_amplitude=0,
                          powerline_amplitude=0, burst_amplitude=0, drift=0, ibi_randomness=0)[:n]
    t = np.arange(n) / FS
    pulse = (ppg - ppg.min()) / (ppg.max() - ppg.min())  # an arterial pulse shaped like the PPG
    hi = np.where(t >= sbp_jump_at, 160.0, 120.0) if sbp_jump_at is not None else 120.0
    abp = 70 + (hi - 70) * pulse
    step = int(chunk_s * FS)
    for i, a in enumerate(range(0, n, step)):
        b = a + step
        yield ChunkMessage(i, Chunk(t0 + a / FS, {"ecg": FS, "ppg": FS, "abp": FS},
                                    {"ecg": ecg[a:b], "ppg": ppg[a:b], "abp": abp[a:b]}))


def _usable(w: WindowResult) -> bool:
    return w.input_usable and w.reference is not None and w.reference.usable


def _run(pipeline, messages, state=None):
    outs = []
    for m in messages:
        state, o = pipeline.step(state, m)
        outs.extend(o)
    return state, outs


def test_label_at_t_never_influences_the_prediction_scored_at_t():
    p = Pipeline(PipelineConfig(methods=("spy",), arterial_schedule=Schedule.parse("every:20")))
    state, outs = _run(p, _chunks(80.0, sbp_jump_at=40.0))
    log = state.estimators["spy"].log_
    for i, entry in enumerate(log):
        if entry[0] == "learn":
            # the window's own prediction came first, and nothing learned later was predicted earlier
            assert ("predict", entry[1]) in log[:i]
    windows = [o for o in outs if isinstance(o, WindowResult)]
    cal = [w for w in windows if w.labels]
    # each calibration is the first usable window at or after its slot (30 s, then every 20 s)
    expected = [next(w.t_end_s for w in windows if w.t_end_s >= due and _usable(w)) for due in (30.0, 50.0, 70.0)]
    assert [w.t_end_s for w in cal] == expected
    # the prediction at the first calibration window is still uncalibrated
    assert cal[0].estimates["spy"].sbp_mmhg is None
    nxt = next(w for w in windows if w.t_end_s > cal[0].t_end_s and w.input_usable)
    assert nxt.estimates["spy"].sbp_mmhg == pytest.approx(cal[0].labels[0].sbp_mmhg)


def test_repeated_chunks_apply_once():
    p = Pipeline(PipelineConfig(methods=("carry_forward",)))
    msgs = list(_chunks(20.0))
    s1, o1 = _run(p, msgs)
    s2, o2 = _run(p, msgs + msgs[3:6])  # at-least-once redelivery
    w1 = [o for o in o1 if isinstance(o, WindowResult)]
    w2 = [o for o in o2 if isinstance(o, WindowResult)]
    assert len(w1) == len(w2) and s1.last_seq == s2.last_seq
    assert sum(1 for o in o2 if getattr(o, "kind", None) == EventKind.DUPLICATE_IGNORED) == 3


def test_cuff_reading_waits_for_its_window_and_duplicates_are_ignored():
    p = Pipeline(PipelineConfig(methods=("carry_forward",)))
    msgs = list(_chunks(40.0))
    state, _ = _run(p, msgs[:6])  # stream up to 12 s
    cal = Calibrate("cmd-1", measured_at_s=20.0, sbp_mmhg=131.0, dbp_mmhg=77.0)
    state, out = p.step(state, cal)
    assert out == []  # in the future of the stream: pending
    state, out = p.step(state, cal)
    assert out[0].kind == EventKind.DUPLICATE_IGNORED
    state, outs = _run(p, msgs[6:], state)
    windows = [o for o in outs if isinstance(o, WindowResult)]
    paired = next(w for w in windows if w.t_end_s >= 20.0 and w.input_usable)
    assert paired.estimates["carry_forward"].sbp_mmhg is None and paired.labels[0].sbp_mmhg == 131.0
    after = next(w for w in windows if w.t_end_s > paired.t_end_s and w.input_usable)
    assert after.estimates["carry_forward"].sbp_mmhg == 131.0
    accepted = [o for o in outs if getattr(o, "kind", None) == EventKind.CALIBRATION_ACCEPTED]
    assert [e.command_id for e in accepted] == ["cmd-1"]  # the event names the command it answers


def test_late_reading_pairs_with_history_stale_and_implausible_rejected():
    p = Pipeline(PipelineConfig(methods=("carry_forward",)))
    state, _ = _run(p, _chunks(40.0))
    late_t = [e for e in state.journal if e["usable"]][-1]["t_end_s"] - 1.0  # that window's own time
    state, out = p.step(state, Calibrate("late", measured_at_s=late_t, sbp_mmhg=100.0, dbp_mmhg=60.0))
    assert out[0].kind == EventKind.CALIBRATION_ACCEPTED and state.calibrations == 1
    state, out = p.step(state, Calibrate("stale", measured_at_s=1.0, sbp_mmhg=100.0, dbp_mmhg=60.0))
    assert out[0].kind == EventKind.CALIBRATION_REJECTED
    state, out = p.step(state, Calibrate("bad", measured_at_s=late_t, sbp_mmhg=60.0, dbp_mmhg=58.0))
    assert out[0].kind == EventKind.CALIBRATION_REJECTED and state.calibrations == 1


def test_hypotensive_cuff_reading_is_accepted():
    p = Pipeline(PipelineConfig(methods=("carry_forward",)))
    state, _ = _run(p, _chunks(20.0))
    t = [e for e in state.journal if e["usable"]][-1]["t_end_s"] - 1.0
    state, out = p.step(state, Calibrate("low", measured_at_s=t, sbp_mmhg=62.0, dbp_mmhg=38.0))
    assert out[0].kind == EventKind.CALIBRATION_ACCEPTED


def test_reset_forgets_the_patient_but_not_idempotency():
    p = Pipeline(PipelineConfig(methods=("carry_forward",), arterial_schedule=Schedule.parse("once")))
    msgs = list(_chunks(40.0))
    state, _ = _run(p, msgs)
    assert state.calibrations == 1
    state, out = p.step(state, Reset("r1"))
    assert out[0].kind == EventKind.PATIENT_RESET and state.calibrations == 0
    state, out = p.step(state, msgs[-1])  # a repeat of the old episode's chunk stays a repeat
    assert [o.kind for o in out] == [EventKind.DUPLICATE_IGNORED]
    state, out = p.step(state, Reset("r1"))
    assert out[0].kind == EventKind.DUPLICATE_IGNORED


def test_state_round_trips_through_bytes_mid_stream_without_changing_results():
    p = Pipeline(PipelineConfig(methods=("mean", "carry_forward"), arterial_schedule=Schedule.parse("every:20")))
    msgs = list(_chunks(60.0, chunk_s=1.5, sbp_jump_at=30.0))
    _, straight = _run(p, msgs)
    state, restored = None, []
    for m in msgs:
        if state is not None:
            blob = state_to_bytes(state)
            state = state_from_bytes(blob, p)
            assert state_to_bytes(state) == blob  # exact round trip
        state, o = p.step(state, m)
        restored.extend(o)
    a = [o for o in straight if isinstance(o, WindowResult)]
    b = [o for o in restored if isinstance(o, WindowResult)]
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert x.estimates == y.estimates and x.reference == y.reference and x.labels == y.labels
    assert len(blob) < 64 * 1024


def test_calibration_suggested_after_a_sustained_run_and_once_per_calibration():
    from bpstream.models import Estimate
    from bpstream.stream.core._suggest import SuggestConfig, suggest

    cfg = SuggestConfig(after_windows=3, max_age_s=600.0)
    off = Estimate(140.0, 70.0, 95.0, 5.0, 3.0, 4.0)  # 20 mmHg above the calibration, interval +-8.2
    inside = Estimate(125.0, 70.0, 90.0, 5.0, 3.0, 4.0)
    carried = (120.0, 70.0, 88.0)
    run, sent, outs = 0, [], []
    for est in (off, off, inside, off, off, off, off):
        run, sent, flagged, reason, detail = suggest(run, sent, cfg, est, carried, 30.0)
        outs.append((flagged, reason))
    assert outs == [(False, None), (False, None), (False, None), (False, None), (False, None),
                    (True, "interval_left_calibration"), (True, None)]
    assert detail["sbp_change_mmhg"] == 20.0
    # an old calibration is flagged even when the interval still holds the carried value
    assert suggest(0, [], cfg, inside, carried, 601.0)[3] == "calibration_age"
    # no uncertainty or no calibration value: never flagged on the interval
    assert suggest(5, [], cfg, Estimate(140.0, 70.0, 95.0), carried, 30.0)[2] is False


class Drifter(Estimator):
    """Anchored to its last label; says pressure rose 20 mmHg with a 2 mmHg sd (a confident change)."""

    name = "drifter"

    def __init__(self):
        self.cal_: list = [None, None, None]

    def predict_one(self, window: Window) -> Estimate:
        if self.cal_[0] is None:
            return Estimate(None, None, None)
        return Estimate(self.cal_[0] + 20.0, self.cal_[1], self.cal_[2], 2.0, 2.0, 2.0)

    def learn_one(self, window: Window, label: Reference) -> None:
        self.cal_ = [label.sbp_mmhg, label.dbp_mmhg, label.map_mmhg]

    def calibration_mmhg(self):
        return tuple(self.cal_)


register("drifter", Drifter)


def test_step_emits_calibration_suggested_once_per_calibration():
    p = Pipeline(PipelineConfig(methods=("drifter",), arterial_schedule=Schedule.parse("every:30")))
    state, outs = _run(p, _chunks(90.0))
    windows = [o for o in outs if isinstance(o, WindowResult)]
    events = [o for o in outs if getattr(o, "kind", None) == EventKind.CALIBRATION_SUGGESTED]
    cal_events = [o for o in outs if getattr(o, "kind", None) == EventKind.CALIBRATION_ACCEPTED]
    flagged = [w for w in windows if w.calibration_suggested]
    assert cal_events and flagged and len(events) == len(cal_events)  # one per calibration
    assert all(e.detail["sbp_change_mmhg"] == 20.0 and e.detail["reason"] == "interval_left_calibration"
               for e in events)
    # never on the first usable windows after a calibration: the run must last 3 windows
    first_after = [w for w in windows if w.labels]
    assert all(not w.calibration_suggested for w in first_after)
