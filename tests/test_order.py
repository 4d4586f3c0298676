"""Order and identity per patient (issue 10, part A): far-ahead and late chunks, the reorder buffer,
command outcomes, calibration pairing independent of arrival order, estimate seq across discharge."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from bpstream.filters import Reason, Reference, Window
from bpstream.models import Estimate, Estimator, register
from bpstream.stream.kafka._codec import decode_waveform, encode_waveform
from bpstream.stream.core._errors import MessageError
from bpstream.stream.core._messages import ChunkMessage, DeadLetter, EventKind, Reset, WindowResult
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.core._state_codec import state_from_bytes, state_to_bytes
from bpstream.stream.core._step import Pipeline, PipelineConfig

from .test_step import _chunks, _run


class Drift(Estimator):
    """Learns from labels AND from every unlabeled window (order-sensitive), predicts from both."""

    name = "drift"

    def __init__(self):
        self.level_: float | None = None
        self.n_unlabeled_ = 0
        self.acc_ = 0.0

    def predict_one(self, window: Window) -> Estimate:
        if self.level_ is None:
            return Estimate(None, None, None)
        v = self.level_ + 0.01 * self.acc_
        return Estimate(v, v - 40.0, v - 20.0)

    def learn_one(self, window: Window, label: Reference) -> None:
        self.level_ = float(label.sbp_mmhg) + float(np.mean(window.ppg))
        self.acc_ *= 0.5

    def learn_unlabeled(self, window: Window) -> None:
        self.n_unlabeled_ += 1
        self.acc_ += float(np.std(window.ecg)) + (0.0 if self.level_ is None else 1.0)


register("drift", Drift)

CONFIG = PipelineConfig(methods=("drift", "carry_forward"))


def _windows(outs):
    return [o for o in outs if isinstance(o, WindowResult)]


def _same(a: list[WindowResult], b: list[WindowResult], tol: float = 1e-6) -> None:
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        assert (x.t_start_s, x.t_end_s, x.segment, x.input_usable) == (y.t_start_s, y.t_end_s, y.segment, y.input_usable)
        assert x.calibration_count == y.calibration_count
        for m in x.estimates:
            ex, ey = x.estimates[m], y.estimates[m]
            assert ex.validity == ey.validity and ex.reasons == ey.reasons
            for q in ("sbp_mmhg", "dbp_mmhg", "map_mmhg"):
                vx, vy = getattr(ex, q), getattr(ey, q)
                assert (vx is None and vy is None) or abs(vx - vy) <= tol, (m, q, x.t_end_s, vx, vy)


def shuffle_in_blocks(msgs: list, block: int = 3, seed: int = 0) -> list:
    rng = np.random.default_rng(seed)
    out = []
    for a in range(0, len(msgs), block):
        part = msgs[a : a + block]
        out += [part[i] for i in rng.permutation(len(part))]
    return out


# -- failure 1: a chunk far ahead cannot silence a patient ----------------------------------------
@pytest.mark.parametrize("bogus_seq", [10 + 1000 + 1, 2**62, 2**63 - 1])
def test_far_ahead_seq_is_dead_lettered_and_the_patient_keeps_being_estimated(bogus_seq):
    p = Pipeline(CONFIG)
    msgs = list(_chunks(60.0))
    _, clean = _run(p, msgs)
    bogus = ChunkMessage(bogus_seq, msgs[3].chunk)
    state, outs = _run(p, msgs[:10] + [bogus] + msgs[10:])
    dead = [o for o in outs if isinstance(o, DeadLetter)]
    assert [d.reason for d in dead] == [Reason.MSG_SEQ_GAP]
    _same(_windows(outs), _windows(clean))
    assert state.last_seq == msgs[-1].seq


def test_a_confirmed_seq_jump_is_followed_and_reset_always_recovers():
    p = Pipeline(CONFIG)
    msgs = list(_chunks(80.0))
    renumbered = [ChunkMessage(5000 + m.seq, m.chunk) for m in msgs[15:]]
    state, outs = _run(p, msgs[:15] + renumbered)
    dead = [o for o in outs if isinstance(o, DeadLetter)]
    assert [d.reason for d in dead] == [Reason.MSG_SEQ_GAP] * 2  # the third in a row is believed
    after = [w for w in _windows(outs) if w.t_start_s >= 15 * 2.0]
    assert after, "no window after the confirmed jump"
    # reset after a jump (and after a far-future chunk was applied): fresh, estimating, seq numbering free
    state, _ = p.step(state, ChunkMessage(state.last_seq + 1,
                                          dataclasses.replace(msgs[0].chunk, t_start_s=msgs[0].chunk.t_start_s + 86400)))
    state, out = p.step(state, Reset("r-jump"))
    assert out[-1].kind == EventKind.PATIENT_RESET
    later = [ChunkMessage(m.seq, dataclasses.replace(m.chunk, t_start_s=m.chunk.t_start_s + 200.0)) for m in msgs[:10]]
    state, outs = _run(p, later, state)
    assert len(_windows(outs)) == 6  # 20 s of stream after the reset: windows at 10, 12, ..., 20 s


@pytest.mark.parametrize("seq", [2**63, 2**64, 2**200, -1])
def test_seq_is_bounded_at_decode(seq):
    chunk = next(iter(_chunks(2.0))).chunk
    chunk = dataclasses.replace(chunk, t_start_s=chunk.t_start_s + 1.7e9)  # inside the plausible time range
    doc = encode_waveform("p-1", 0, chunk).replace(b'"seq":0', b'"seq":' + str(seq).encode())
    with pytest.raises(MessageError) as exc:
        decode_waveform(doc)
    assert exc.value.reason == Reason.MSG_INVALID and ("seq" in str(exc.value) or "64 bits" in str(exc.value))
    assert decode_waveform(encode_waveform("p-1", 2**63 - 1, chunk)).message.seq == 2**63 - 1


def test_a_far_future_chunk_starts_a_segment_and_estimation_goes_on():
    p = Pipeline(CONFIG)
    msgs = list(_chunks(60.0))
    jump = ChunkMessage(10, dataclasses.replace(msgs[10].chunk, t_start_s=msgs[10].chunk.t_start_s + 86400.0))
    state, outs = _run(p, msgs[:10] + [jump] + msgs[11:])
    windows = _windows(outs)
    assert windows[-1].t_end_s == pytest.approx(60.0) and len({w.segment for w in windows}) == 2


# -- failure 3: the reorder buffer ----------------------------------------------------------------
def test_chunks_shuffled_within_blocks_give_the_in_order_windows():
    p = Pipeline(PipelineConfig(methods=("drift", "carry_forward"), arterial_schedule=Schedule.parse("every:20")))
    msgs = list(_chunks(80.0))
    _, ordered = _run(p, msgs)
    for seed in range(3):
        _, shuffled = _run(p, shuffle_in_blocks(msgs, 3, seed))
        _same(_windows(shuffled), _windows(ordered), tol=0.0)
        assert not [o for o in shuffled if isinstance(o, DeadLetter)]


def test_a_gap_is_given_up_after_the_bound_and_the_missing_chunk_is_late_then_repeats_ignored():
    p = Pipeline(PipelineConfig(methods=("carry_forward",), reorder_s=10.0))
    msgs = list(_chunks(40.0))
    state, outs = _run(p, msgs[:5])
    n0 = len(_windows(outs))
    state, outs = _run(p, msgs[6:11], state)  # 5 chunks = 10 s held behind seq 5: not yet given up
    assert _windows(outs) == [] and len(state.held) == 5
    state, outs = _run(p, msgs[11:12], state)  # 12 s held: given up, the stream goes on (new segment)
    assert len(state.held) == 0 and state.last_seq == 11
    state, outs = _run(p, [msgs[5]], state)
    assert [type(o) for o in outs] == [DeadLetter] and outs[0].reason == Reason.MSG_LATE
    state, outs = _run(p, [msgs[7], msgs[11]], state)
    assert [o.kind for o in outs] == [EventKind.DUPLICATE_IGNORED] * 2
    state, outs = _run(p, msgs[12:], state)
    assert len(_windows(outs)) > 0 and n0 > 0
    # a repeat of a held chunk is a repeat too
    state, _ = _run(p, msgs[:3])
    state, _ = _run(p, [msgs[4]], state)
    state, outs = _run(p, [msgs[4]], state)
    assert [o.kind for o in outs] == [EventKind.DUPLICATE_IGNORED]


def test_state_with_held_chunks_journal_and_snapshots_round_trips_exactly():
    p = Pipeline(PipelineConfig(methods=("drift", "carry_forward", "mean"), arterial_schedule=Schedule.parse("every:20")))
    msgs = shuffle_in_blocks(list(_chunks(70.0)), 3, 1)
    _, straight = _run(p, msgs)
    state, restored, held_seen = None, [], 0
    for m in msgs:
        if state is not None:
            blob = state_to_bytes(state)
            state = state_from_bytes(blob, p)
            assert state_to_bytes(state) == blob
            held_seen += bool(state.held)
        state, o = p.step(state, m)
        restored.extend(o)
    assert held_seen and state.journal and state.snapshots
    _same(_windows(restored), _windows(straight), tol=0.0)
    assert len(blob) < 64 * 1024


# -- failure 4: pairing by stream content only ------------------------------------------------------
def test_model_events_not_in_the_contract():
    assert {k.value for k in EventKind} == {"calibration_accepted", "calibration_rejected", "patient_reset",
                                             "patient_discharged", "duplicate_ignored", "calibration_suggested"}


def test_flush_applies_held_chunks_and_the_processor_flushes_a_quiet_patient():
    from bpstream.stream.kafka._agents import Item, Processor
    from bpstream.stream.core._messages import Flush
    from bpstream.stream.config._settings import Settings

    p = Pipeline(PipelineConfig(methods=("carry_forward",)))
    msgs = list(_chunks(30.0, t0=1.78e9))  # a time inside BPSTREAM_TIME_MIN .. now
    state, _ = _run(p, msgs[:6] + msgs[7:10])  # seq 6 lost: 3 chunks held, the stream goes quiet
    assert len(state.held) == 3
    state, outs = p.step(state, Flush())
    assert not state.held and state.last_seq == 9 and not _windows(outs)  # new segment: 6 s is no window yet
    proc = Processor(Settings(methods=("carry_forward",)), p)
    sb = None
    for m in msgs[:6] + msgs[7:12]:  # 10 s held: not yet given up
        r = proc.process(Item(proc.settings.topic_waveforms, 0, 0, b"q-1", encode_waveform("q-1", m.seq, m.chunk), sb))
        sb = r.new_state or sb  # the table keeps its value until the worker writes a new one
    assert proc.idle_held(0.0) == [b"q-1"]
    r = proc.flush(b"q-1", sb)
    assert r.new_state is not None and any(kind == "estimates" for kind, _, _ in r.sends)
    assert proc.idle_held(0.0) == [] and not state_from_bytes(r.new_state, p).held


def test_an_old_episode_redelivered_after_a_reset_never_takes_the_new_episodes_place():
    """A crash after a reset: redelivery starts before the reset, while the restored state already holds the new
    episode (numbered from 0 again). The old chunks are repeats, whatever the new episode's position; the new
    episode's windows are those of an uninterrupted run."""
    p = Pipeline(PipelineConfig(methods=("carry_forward",)))
    old = list(_chunks(40.0))
    new = [ChunkMessage(m.seq, dataclasses.replace(m.chunk, t_start_s=m.chunk.t_start_s + 1000.0)) for m in old]
    _, ref = _run(p, old + [Reset("r1")] + new)
    state, _ = _run(p, old + [Reset("r1")] + new[:3])
    state = state_from_bytes(state_to_bytes(state), p)
    state, outs = _run(p, old[16:] + [Reset("r1")] + new, state)
    assert [(w.seq, w.t_end_s) for w in _windows(outs)] == [(w.seq, w.t_end_s) for w in _windows(ref) if w.t_end_s > 1000]
    assert not [o for o in outs if isinstance(o, DeadLetter)]


def test_a_new_episode_is_not_late_for_the_old_episodes_given_up_seqs():
    p = Pipeline(PipelineConfig(methods=("carry_forward",)))
    msgs = list(_chunks(40.0))
    state, _ = _run(p, msgs[1:12])  # seq 0 never came: its place was given up
    assert state.late_ranges == [[0, 0]]
    _, outs = _run(p, [msgs[0]], state_from_bytes(state_to_bytes(state), p))  # the old episode's seq 0: late
    assert [o.reason for o in outs if isinstance(o, DeadLetter)] == [Reason.MSG_LATE]
    new = [ChunkMessage(m.seq, dataclasses.replace(m.chunk, t_start_s=m.chunk.t_start_s + 1000.0)) for m in msgs]
    state, outs = _run(p, [Reset("r1")] + new[:8], state)
    assert not [o for o in outs if isinstance(o, DeadLetter)]  # the new seq 0 starts the episode at once
    assert [w.t_end_s for w in _windows(outs)] == [1010.0, 1012.0, 1014.0, 1016.0]
