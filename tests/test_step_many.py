"""``Pipeline.step_many`` (windows cut once, measured together) gives exactly what ``Pipeline.step`` gives
one message at a time: same outputs, same states, for interleaved patients with commands, reordered and
repeated chunks, and a refused chunk; and the worker's batch isolates a message the batch path fails on."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bpstream.filters import Chunk, ChunkError
from bpstream.stream.core import (
    Calibrate,
    ChunkMessage,
    Discharge,
    Pipeline,
    PipelineConfig,
    Reset,
    Schedule,
    state_to_bytes,
)
from bpstream.stream.records import iter_chunks, read_record

from ._data import record

T0 = 1_780_000_000.0
NAMES = ("a555l", "f362s", "v557l")


@pytest.fixture(scope="module")
def streams() -> dict[str, list]:
    out = {}
    for name in NAMES:
        rec = read_record(record(name), roles=("ecg", "ppg", "abp"), required=("ecg", "ppg"))
        out[name] = list(iter_chunks(rec, 2.0, t0_s=T0))[:45]
    return out


def _script(streams: dict[str, list]) -> list[tuple[str, object]]:
    """Patients interleaved chunk by chunk, with the disorder a gateway makes and every command kind."""
    rng = np.random.default_rng(7)
    messages: list[tuple[str, object]] = []
    for k in range(45):
        for name, chunks in streams.items():
            messages.append((name, ChunkMessage(k, chunks[k])))
    # shuffle within blocks of 5 (reordering across and within patients), then add repeats and commands
    blocks = [messages[a : a + 5] for a in range(0, len(messages), 5)]
    messages = [b[i] for b in blocks for i in rng.permutation(len(b))]
    messages.insert(40, messages[10])  # a repeat (at-least-once delivery)
    t_cal = float(streams["a555l"][20].t_start_s)
    messages.insert(70, ("a555l", Calibrate("c-1", t_cal, 128.0, 71.0, 90.0)))  # arrives before its window
    messages.insert(75, ("f362s", Calibrate("c-2", T0 + 14.0, 119.0, 64.0, None)))  # after its window
    messages.insert(100, ("v557l", Reset("r-1")))
    messages.insert(110, ("v557l", Reset("r-1")))  # a repeated command
    messages.insert(125, ("f362s", Discharge("d-1")))
    return messages


def _one_by_one(pipeline: Pipeline, messages) -> tuple[list, dict]:
    states: dict = {}
    outs = []
    for key, message in messages:
        states[key], o = pipeline.step(states.get(key), message)
        outs.append(o)
    return outs, states


@pytest.mark.parametrize("block", [1, 7, 32, 1000])
def test_step_many_equals_step_message_by_message(streams, block):
    config = PipelineConfig(methods=("carry_forward", "offset"), arterial_schedule=Schedule.parse("every:60"))
    messages = _script(streams)
    want, want_states = _one_by_one(Pipeline(config), messages)
    pipeline = Pipeline(config)
    states: dict = {}
    got = []
    for a in range(0, len(messages), block):
        got += pipeline.step_many(states, messages[a : a + block])
    assert [repr(o) for o in got] == [repr(o) for o in want]
    assert sum(1 for o in want for x in o if hasattr(x, "estimates")) > 60  # windows came out
    kinds = {x.kind.value for o in want for x in o if hasattr(x, "kind")}
    assert {"calibration_accepted", "duplicate_ignored", "patient_reset", "patient_discharged"} <= kinds
    assert {k: state_to_bytes(s) for k, s in states.items()} == {k: state_to_bytes(s) for k, s in want_states.items()}


def test_step_many_refuses_a_bad_chunk_before_changing_anything(streams):
    pipeline = Pipeline(PipelineConfig())
    states: dict = {}
    pipeline.step_many(states, [("a555l", ChunkMessage(k, streams["a555l"][k])) for k in range(6)])
    before = state_to_bytes(states["a555l"])
    bad = Chunk(T0, {"ecg": 125.0}, {"ecg": np.zeros(250)})  # no PPG channel
    with pytest.raises(ChunkError):
        pipeline.check(ChunkMessage(6, bad))
    with pytest.raises(ChunkError):
        pipeline.step_many(states, [("a555l", ChunkMessage(6, streams["a555l"][6])), ("a555l", ChunkMessage(7, bad))])
    assert state_to_bytes(states["a555l"]) == before


def test_the_worker_batch_isolates_a_message_the_batched_path_fails_on(monkeypatch):
    """A fault inside the batched pass (here: deciding one window of one patient raises) sends the batch
    through again one message at a time, from the same stored states: only the message at fault is
    dead-lettered, and every other patient's messages give what they give without the fault."""
    from bpstream.stream.config import Settings
    from bpstream.stream.kafka._agents import Item, Processor
    from bpstream.stream.kafka._codec import encode_waveform

    settings = Settings(methods=("carry_forward",))
    config = PipelineConfig(methods=("carry_forward",))
    t0 = {n: T0 + 1000.0 * i for i, n in enumerate(NAMES)}  # each patient's windows end at its own times
    chunks = {n: list(iter_chunks(read_record(record(n), roles=("ecg", "ppg", "abp"), required=("ecg", "ppg")),
                                  2.0, t0_s=t0[n]))[:8] for n in NAMES}
    values = [(n.encode(), encode_waveform(n, k, chunks[n][k])) for k in range(8) for n in NAMES]
    items = [Item(settings.topic_waveforms, 0, i, key, v) for i, (key, v) in enumerate(values)]
    want = Processor(settings, Pipeline(config), clock=lambda: T0 + 60).process_batch(items)

    real = Pipeline.decide
    fault_t = t0["f362s"] + 14.0  # the window f362s' chunk 6 completes

    def decide(self, state, window, *args, **kwargs):
        if abs(window.t_end_s - fault_t) < 1e-6:
            raise RuntimeError("a fault in the step")
        return real(self, state, window, *args, **kwargs)

    monkeypatch.setattr(Pipeline, "decide", decide)
    got = Processor(settings, Pipeline(config), clock=lambda: T0 + 60).process_batch(items)
    at_fault = values.index((b"f362s", encode_waveform("f362s", 6, chunks["f362s"][6])))
    dead = [(i, json.loads(v)["reason"]) for i, r in enumerate(got) for kind, _, v in r.sends if kind == "deadletter"]
    assert dead == [(at_fault, "msg_step_failed")]
    for i, (key, _) in enumerate(values):
        if key != b"f362s":
            assert got[i].sends == want[i].sends, i
    assert sum(kind == "estimates" for r in got for kind, _, _ in r.sends) >= 4  # the others were estimated


def test_the_input_gate_judges_a_batch_bit_for_bit_as_its_windows_one_by_one(streams):
    """The batched pass gives a patient's input gate its windows of a run as one batch; the worker's micro-batches
    give it one at a time. Template correlations and verdicts must be equal to the last bit (a matrix-vector
    product over the batch would not be: BLAS sums a row of a many-row product differently)."""
    from bpstream.filters import InputFilter, QualityThresholds, Windower, measure_input
    from bpstream.stream.core._batch import take_row

    windower = Windower()
    windows = [w for chunk in streams["a555l"] for w in windower.update(chunk)]
    n = len(windows)
    m = measure_input(np.stack([w.ecg for w in windows]), np.stack([w.ppg for w in windows]), 125.0,
                      QualityThresholds())
    batch, alone = InputFilter(fs_hz=125.0), InputFilter(fs_hz=125.0)
    q = batch.update(None, None, m)
    singles = [alone.update(None, None, take_row(m, i, n)) for i in range(n)]
    assert n > 30 and np.isfinite(q.ppg_template_corr).sum() > 20 and batch.n_template_updates_ > 5
    for name in ("ppg_template_corr", "usable", "ecg_score", "ppg_score", "ecg_hr_bpm", "ppg_hr_bpm"):
        want = np.concatenate([getattr(s, name) for s in singles])
        assert np.array_equal(getattr(q, name), want, equal_nan=True), name
    assert list(q.reasons) == [r for s in singles for r in s.reasons]
    for k, v in batch.state_dict().items():
        assert np.array_equal(v, alone.state_dict()[k], equal_nan=True), k
    # a seeded gate whose template does not move in the batch (every window fails an ECG rule): every window's
    # correlation comes from the batch's first pass over the template, the case a matrix product got wrong
    th = QualityThresholds(ecg_kurtosis_min=1e9)
    m = measure_input(np.stack([w.ecg for w in windows]), np.stack([w.ppg for w in windows]), 125.0, th)
    batch, alone = InputFilter(fs_hz=125.0, thresholds=th), InputFilter(fs_hz=125.0, thresholds=th)
    for f in (batch, alone):
        f.template_, f.n_template_updates_ = np.asarray(m.ppg_template_z[3], np.float64).copy(), 1
    q = batch.update(None, None, m)
    want = np.concatenate([alone.update(None, None, take_row(m, i, n)).ppg_template_corr for i in range(n)])
    assert batch.n_template_updates_ == 1 and np.isfinite(want).sum() > 20
    assert np.array_equal(q.ppg_template_corr, want, equal_nan=True)
