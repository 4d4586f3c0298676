"""Commands in the per-patient order: pairing does not depend on when a command arrives, every command ends in
exactly one outcome, identities go on across discharge (split from test_order.py)."""

from __future__ import annotations

import dataclasses

import pytest

from bpstream.filters import Reason
from bpstream.stream.core._messages import Calibrate, ChunkMessage, Discharge, Event, EventKind, Reset
from bpstream.stream.core._step import Pipeline

from .test_order import CONFIG, _same, _windows
from .test_step import _chunks, _run


def _with_command(msgs, cmd, after: int):
    """The chunk stream with ``cmd`` inserted after chunk index ``after``."""
    return msgs[: after + 1] + [cmd] + msgs[after + 1 :]


@pytest.mark.parametrize("lag_chunks", [1, 2, 3, 4])
def test_pairing_and_later_estimates_do_not_depend_on_when_the_command_arrives(lag_chunks):
    p = Pipeline(CONFIG)
    msgs = list(_chunks(70.0))
    cal = Calibrate("cuff-a", measured_at_s=29.5, sbp_mmhg=131.0, dbp_mmhg=77.0)
    k = 14  # the chunk ending at 30 s completes the window the reading belongs to (ends 30 s)
    _, early = _run(p, _with_command(msgs, cal, k - 1))
    _, late = _run(p, _with_command(msgs, cal, k + lag_chunks - 1))
    ev_e = [o for o in early if isinstance(o, Event) and o.command_id == "cuff-a"]
    ev_l = [o for o in late if isinstance(o, Event) and o.command_id == "cuff-a"]
    assert [(e.kind, e.t_s) for e in ev_e] == [(e.kind, e.t_s) for e in ev_l] == \
        [(EventKind.CALIBRATION_ACCEPTED, 30.0)]
    arrived = 2.0 * (k + lag_chunks)  # stream time when the late command was processed
    _same([w for w in _windows(late) if w.t_end_s > arrived], [w for w in _windows(early) if w.t_end_s > arrived])
    paired = next(w for w in _windows(early) if w.t_end_s == 30.0)
    assert paired.labels and paired.labels[0].sbp_mmhg == 131.0


def test_a_reading_older_than_the_journal_is_stale_and_one_past_tolerance_has_no_window():
    p = Pipeline(CONFIG)
    msgs = list(_chunks(60.0))
    state, _ = _run(p, msgs)
    state, out = p.step(state, Calibrate("old", measured_at_s=20.0, sbp_mmhg=120.0, dbp_mmhg=70.0))
    assert out[0].kind == EventKind.CALIBRATION_REJECTED and out[0].reason == Reason.CUFF_STALE
    # waiting, then a jump in the stream: no usable window within the tolerance
    state, out = p.step(state, Calibrate("gap", measured_at_s=61.0, sbp_mmhg=120.0, dbp_mmhg=70.0))
    assert out == []
    gap = [ChunkMessage(m.seq + 30, dataclasses.replace(m.chunk, t_start_s=m.chunk.t_start_s + 100.0)) for m in msgs[:8]]
    state, outs = _run(p, gap, state)
    ev = [o for o in outs if isinstance(o, Event) and o.command_id == "gap"]
    assert [(e.kind, e.reason) for e in ev] == [(EventKind.CALIBRATION_REJECTED, Reason.CUFF_NO_WINDOW)]


# -- failure 2: every command ends in exactly one outcome ------------------------------------------
def test_every_command_ends_in_exactly_one_outcome():
    p = Pipeline(CONFIG)
    msgs = list(_chunks(60.0))
    script = msgs[:10] + [
        Calibrate("on-time", 24.0, 120.0, 70.0),
        Calibrate("implausible", 20.0, 300.0, 70.0),
        Calibrate("future", 10_000.0, 120.0, 70.0),
        Calibrate("on-time", 24.0, 120.0, 70.0),  # repeat
    ] + msgs[10:20] + [
        Calibrate("late", 38.5, 125.0, 72.0),
        Calibrate("stale", 2.0, 125.0, 72.0),
        Calibrate("held-at-reset", 100.0, 125.0, 72.0),
        ChunkMessage(20 + 5000, msgs[3].chunk),  # a far-ahead chunk in between changes nothing here
        Reset("reset-1"),
        Reset("reset-1"),
    ] + [ChunkMessage(m.seq + 20, dataclasses.replace(m.chunk, t_start_s=m.chunk.t_start_s + 40.0)) for m in msgs[:8]] + [
        Calibrate("held-at-discharge", 200.0, 125.0, 72.0),
        Discharge("discharge-1"),
        Discharge("discharge-2"),  # already discharged
    ]
    _, outs = _run(p, script)
    commands = [m.command_id for m in script if hasattr(m, "command_id")]
    answers: dict[str, list] = {c: [] for c in commands}
    for o in outs:
        if isinstance(o, Event) and o.command_id is not None:
            answers[o.command_id].append((o.kind, o.reason))
    expected = {
        "on-time": [(EventKind.CALIBRATION_ACCEPTED, None), (EventKind.DUPLICATE_IGNORED, None)],
        "implausible": [(EventKind.CALIBRATION_REJECTED, Reason.CUFF_IMPLAUSIBLE)],
        "future": [(EventKind.CALIBRATION_REJECTED, Reason.CUFF_FUTURE)],
        "late": [(EventKind.CALIBRATION_ACCEPTED, None)],
        "stale": [(EventKind.CALIBRATION_REJECTED, Reason.CUFF_STALE)],
        "held-at-reset": [(EventKind.CALIBRATION_REJECTED, Reason.CUFF_CANCELLED)],
        "reset-1": [(EventKind.PATIENT_RESET, None), (EventKind.DUPLICATE_IGNORED, None)],
        "held-at-discharge": [(EventKind.CALIBRATION_REJECTED, Reason.CUFF_CANCELLED)],
        "discharge-1": [(EventKind.PATIENT_DISCHARGED, None)],
        "discharge-2": [(EventKind.DUPLICATE_IGNORED, Reason.ALREADY_DISCHARGED)],
    }
    assert {c: sorted(a, key=str) for c, a in answers.items()} == {c: sorted(a, key=str) for c, a in expected.items()}


def test_a_reading_held_when_a_patient_was_silenced_by_a_far_chunk_is_answered():
    """The issue's case: a far-ahead chunk, then a calibrate; the reading must be paired (not vanish)."""
    p = Pipeline(CONFIG)
    msgs = list(_chunks(60.0))
    script = msgs[:10] + [ChunkMessage(2**62, msgs[10].chunk), Calibrate("c-1", 25.0, 120.0, 70.0)] + msgs[10:]
    _, outs = _run(p, script)
    ev = [o for o in outs if isinstance(o, Event) and o.command_id == "c-1"]
    assert [e.kind for e in ev] == [EventKind.CALIBRATION_ACCEPTED]


# -- failure 5 and 11: estimate seq across discharge, a second discharge -------------------------------
def test_estimate_seq_goes_on_across_discharge_and_readmission_and_second_discharge_is_ignored():
    p = Pipeline(CONFIG)
    msgs = list(_chunks(30.0))
    state, outs = _run(p, msgs)
    first = [w.seq for w in _windows(outs)]
    state, out = p.step(state, Discharge("d-1"))
    assert [o.kind for o in out] == [EventKind.PATIENT_DISCHARGED]
    state, out = p.step(state, Discharge("d-2"))
    assert [(o.kind, o.reason) for o in out] == [(EventKind.DUPLICATE_IGNORED, Reason.ALREADY_DISCHARGED)]
    # a repeat of the old admission's chunk is not a readmission
    state, out = p.step(state, msgs[-1])
    assert [o.kind for o in out] == [EventKind.DUPLICATE_IGNORED]
    readmitted = [ChunkMessage(m.seq, dataclasses.replace(m.chunk, t_start_s=m.chunk.t_start_s + 3600.0)) for m in msgs]
    state, outs = _run(p, readmitted, state)
    second = [w.seq for w in _windows(outs)]
    assert second and min(second) > max(first)
    assert first + second == list(range(1, len(first) + len(second) + 1))
    # the second discharge, redelivered after the readmission (a failover), is a repeat: the patient stays
    state, out = p.step(state, Discharge("d-2"))
    assert [(o.kind, o.reason) for o in out] == [(EventKind.DUPLICATE_IGNORED, None)] and not state.discharged
    state, out = p.step(state, Discharge("d-3"))
    assert [o.kind for o in out] == [EventKind.PATIENT_DISCHARGED]  # readmitted: a real discharge again


def test_waiting_readings_are_bounded_and_a_waiting_one_is_a_repeat_however_old():
    """Readings for a discharged patient wait for a window that may never come: at most 32 wait (the state
    stays bounded), the rest are rejected cuff_queue_full; a waiting reading redelivered after more than 256
    other commands (out of the remembered ids) is still a repeat, never queued twice."""
    p = Pipeline(CONFIG)
    state, _ = _run(p, list(_chunks(30.0)))
    state, _ = p.step(state, Discharge("d-1"))
    answers = []
    for k in range(40):
        state, out = p.step(state, Calibrate(f"c-{k}", 5000.0 + k, 120.0, 70.0))
        answers += [(o.kind, o.reason) for o in out]
    assert len(state.pending) == 32
    assert answers == [(EventKind.CALIBRATION_REJECTED, Reason.CUFF_QUEUE_FULL)] * 8
    for k in range(300):  # other commands push c-0 out of the remembered ids (each refused: the queue is full)
        state, _ = p.step(state, Calibrate(f"x-{k}", 6000.0 + k, 120.0, 70.0))
    assert "c-0" not in state.seen_commands
    state, out = p.step(state, Calibrate("c-0", 5000.0, 120.0, 70.0))  # c-0 again, still waiting
    assert [o.kind for o in out] == [EventKind.DUPLICATE_IGNORED] and len(state.pending) == 32

