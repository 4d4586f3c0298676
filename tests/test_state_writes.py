"""State written when it matters (``BPSTREAM_STATE_EVERY_CHUNKS``), not on every chunk: what the worker's
Processor writes, what it defers, and that deferring changes nothing it sends or the states it writes.

The agent's half (deferred messages kept unacknowledged, so committed offsets stop at what written states
cover) is exercised on a real broker in tests/test_kafka_state_writes.py."""

from __future__ import annotations

import pytest

from bpstream.stream.config._settings import Settings, SettingsError
from bpstream.stream.core._messages import Calibrate
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.core._state_codec import state_to_bytes
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.kafka._agents import Item, Processor
from bpstream.stream.kafka._codec import dumps, encode_waveform
from bpstream.stream.kafka._schemas import command_doc
from bpstream.stream.records._records import iter_chunks, read_record

from ._data import record

T0 = 1_780_000_000.0
WAVES, COMMANDS = "bp.waveforms.v1", "bp.commands.v1"
METHODS = ("carry_forward", "mean")


@pytest.fixture(scope="module")
def chunks():
    return list(iter_chunks(read_record(record("f362s")), 2.0, t0_s=T0))[:30]


def _proc(every: int) -> Processor:
    settings = Settings(methods=METHODS, state_every_chunks=every)
    return Processor(settings, Pipeline(PipelineConfig(methods=METHODS, arterial_schedule=Schedule.parse("once"))),
                     clock=lambda: T0 + 100)


def _run(proc: Processor, values: list[tuple[str, bytes, bytes]], batch: int = 1):
    """Messages through the processor the way the agent hands them over: the table keeps its value until
    a result writes a new one. Returns (sends per message, results, the table, the table after each message)."""
    table: dict = {}
    sends, results, history = [], [], []
    for a in range(0, len(values), batch):
        items = [Item(topic, 0, a + i, key, value, table.get(key)) for i, (topic, key, value) in enumerate(values[a:a + batch])]
        for item, result in zip(items, proc.process_batch(items)):
            if result.new_state is not None:
                table[item.key] = result.new_state
            sends.append(result.sends)
            results.append(result)
            history.append(dict(table))
    return sends, results, table, history


def _waves(chunks, key="p-1", start=0):
    return [(WAVES, key.encode(), encode_waveform(key, start + i, c)) for i, c in enumerate(chunks)]


def test_state_is_written_every_k_changes_and_equals_the_per_message_state(chunks):
    values = _waves(chunks[:12])
    every_sends, every_results, _, every_history = _run(_proc(1), values)
    sends, results, table, history = _run(_proc(4), values)
    assert sends == every_sends  # deferring the state changes nothing that is sent
    written = [i for i, r in enumerate(results) if r.new_state is not None]
    assert written == [3, 7, 11]  # every 4th change
    assert [r.deferred for r in results] == [i not in written for i in range(12)]
    for i in written:  # what is written is the state that writing on every message leaves there
        assert history[i] == every_history[i]
    assert all(r.new_state is not None and not r.deferred for r in every_results)


def test_in_a_batch_the_count_runs_across_batches(chunks):
    values = _waves(chunks[:12])
    _, ref, _, ref_history = _run(_proc(1), values)
    sends, results, _, history = _run(_proc(5), values, batch=3)
    assert [kind for s in sends for kind, _, _ in s] == [kind for r in ref for kind, _, _ in r.sends]
    # changes 1-3 (deferred), 4-6: 6 >= 5, written on the batch's last message; 7-9, 10-12: 6 >= 5 again
    assert [i for i, r in enumerate(results) if r.new_state is not None] == [5, 11]
    assert history[5] == ref_history[5] and history[11] == ref_history[11]


def test_a_command_and_a_new_calibration_are_written_at_once(chunks):
    proc = _proc(100)
    cal = dumps(command_doc("p-1", Calibrate("cuff-1", T0 + 9.0, 140.0, 85.0), T0 + 10))
    values = _waves(chunks[:6]) + [(COMMANDS, b"p-1", cal)] + _waves(chunks[6:8], start=6)
    _, results, table, _ = _run(proc, values)
    assert [r.new_state is not None for r in results] == [False] * 6 + [True, False, False]
    # the stream's own arterial calibration (schedule once: the first usable window at/after 30 s)
    proc = _proc(100)
    _, results, _, _ = _run(proc, _waves(chunks[:30]))
    first = next(i for i, r in enumerate(results) if r.new_state is not None)
    ref = _proc(1)
    _, ref_results, _, _ = _run(ref, _waves(chunks[:30]))
    states = [r.new_state for r in ref_results]
    from bpstream.stream.core._state_codec import state_from_bytes

    cals = [state_from_bytes(s, ref.pipeline).calibrations for s in states]
    assert cals[first] == 1 and cals[first - 1] == 0  # written on the very message that calibrated


def test_a_timer_writes_a_stale_state_and_the_table_moving_on_wins(chunks):
    proc = _proc(100)
    _, results, table, _ = _run(proc, _waves(chunks[:5]))
    assert not table and proc.unwritten() == 1
    assert proc.stale(3600.0) == [] and proc.stale(0.0) == [b"p-1"]
    ref = _proc(1)
    _, _, ref_table, _ = _run(ref, _waves(chunks[:5]))
    assert proc.write(b"p-1") == ref_table[b"p-1"]  # the state the messages so far leave
    assert proc.unwritten() == 0 and proc.write(b"p-1") is None
    # another worker wrote the patient (a rebalance): the table's bytes win over the state in memory
    _run(proc, _waves(chunks[5:7], start=5))
    assert proc.unwritten() == 1
    item = Item(WAVES, 0, 99, b"p-1", encode_waveform("p-1", 5, chunks[5]), ref_table[b"p-1"])
    proc.process_batch([item])  # seq 5 again against the other worker's state (which stops at seq 4): applied
    assert proc.unwritten() == 1 and proc._dirty[b"p-1"].base == ref_table[b"p-1"]


def test_a_failed_batch_rebuilds_a_deferred_state_from_the_table_and_its_messages(chunks, monkeypatch):
    values = _waves(chunks[:10])
    _, ref, _, ref_history = _run(_proc(1), values)
    proc = _proc(100)
    sends, _, table, _ = _run(proc, values[:6])
    pipeline = proc.pipeline
    real = pipeline.step_many
    calls = {"n": 0}

    def failing(states, messages):
        calls["n"] += 1
        if calls["n"] == 1 and len(messages) > 1:  # the batched pass breaks midway, after mutating the state
            real(states, messages[:1])
            raise RuntimeError("boom")
        return real(states, messages)

    monkeypatch.setattr(pipeline, "step_many", failing)
    items = [Item(t, 0, 6 + i, k, v, table.get(k)) for i, (t, k, v) in enumerate(values[6:10])]
    results = proc.process_batch(items)
    assert calls["n"] > 1
    assert [r.sends for r in results] == [r.sends for r in ref[6:10]]  # nothing lost, nothing doubled
    assert proc.write(b"p-1") == ref_history[9][b"p-1"]


def test_a_batch_failing_after_one_patient_was_kept_loses_none_of_its_windows(chunks, monkeypatch):
    """The batched pass fails after patient p-1's state was kept (deferred) and before p-2's: p-1's messages are
    stepped again from its state before the batch, so their windows are published once, not taken for repeats."""
    values = [v for pair in zip(_waves(chunks[:8], "p-1"), _waves(chunks[:8], "p-2")) for v in pair]
    _, ref, _, _ = _run(_proc(1), values)
    proc = _proc(100)
    _, _, table, _ = _run(proc, values[:8])
    real, calls = proc._keep, {"n": 0}

    def keep(key, *args, **kw):
        calls["n"] += 1
        if key == b"p-2" and calls["n"] == 2:  # the second patient of the first batch below
            raise RuntimeError("boom")
        return real(key, *args, **kw)

    monkeypatch.setattr(proc, "_keep", keep)
    items = [Item(t, 0, 8 + i, k, v, table.get(k)) for i, (t, k, v) in enumerate(values[8:16])]
    results = proc.process_batch(items)
    assert calls["n"] > 2
    assert [r.sends for r in results] == [r.sends for r in ref[8:16]]  # nothing lost, nothing doubled


def test_a_failed_idle_flush_keeps_the_deferred_state(chunks, monkeypatch):
    """The timer's flush of a quiet patient fails once: its deferred state (not in the table) is rebuilt from the
    table and its unwritten messages, never replaced by a fresh one, and written whole (so that its messages do
    not wait for a flush that may keep failing); the chunks stay held for the next try."""
    from bpstream.stream.core._state_codec import state_from_bytes
    from bpstream.stream.core._messages import Flush

    values = _waves(chunks[:8])
    values = values[:5] + values[6:8]  # seq 5 never comes: 6 and 7 are held
    proc = _proc(100)
    _, _, table, _ = _run(proc, values)
    assert proc.deferred(b"p-1") and b"p-1" not in table
    real = proc.pipeline.step

    def failing(state, message):
        if isinstance(message, Flush):
            raise RuntimeError("boom")
        return real(state, message)

    monkeypatch.setattr(proc.pipeline, "step", failing)
    failed = proc.flush(b"p-1", None)
    monkeypatch.setattr(proc.pipeline, "step", real)
    assert failed.sends == [] and not proc.deferred(b"p-1") and proc.gap_waiting() == 1
    for state in (proc._cache[b"p-1"][1], state_from_bytes(failed.new_state, proc.pipeline)):
        assert state.last_seq == 4 and [h[0] for h in state.held] == [6, 7]
    again = proc.flush(b"p-1", failed.new_state)  # the next try applies them (a new segment after the gap)
    assert again.new_state is not None and not proc._cache[b"p-1"][1].held and not proc.deferred(b"p-1")
    assert proc._cache[b"p-1"][1].last_seq == 7


def test_an_already_discharged_answer_is_written_with_its_command_id(chunks):
    """A second discharge changes nothing but the remembered command ids: that is written too, so its
    redelivery after a readmission (from another worker's restored state) is still a repeat."""
    from bpstream.stream.core._messages import Discharge
    from bpstream.stream.core._state_codec import state_from_bytes

    proc = _proc(100)
    d1, d2 = (dumps(command_doc("p-1", Discharge(c), T0 + 20)) for c in ("d-1", "d-2"))
    values = _waves(chunks[:6]) + [(COMMANDS, b"p-1", d1), (COMMANDS, b"p-1", d2)]
    _, results, table, _ = _run(proc, values)
    assert results[-1].new_state is not None
    assert "d-2" in state_from_bytes(table[b"p-1"], proc.pipeline).seen_commands


def test_settings_refuse_a_k_below_one():
    assert Settings().state_every_chunks >= 1
    with pytest.raises(SettingsError):
        Settings(state_every_chunks=0).validated()
    with pytest.raises(SettingsError):
        Settings(state_max_age_s=-1.0).validated()


def test_state_bytes_are_the_codec_of_the_state(chunks):
    """The bytes written after deferral are the state codec's bytes of the in-memory state (no second format)."""
    proc = _proc(3)
    _, results, table, _ = _run(proc, _waves(chunks[:3]))
    assert results[2].new_state == state_to_bytes(proc._cache[b"p-1"][1])


def test_a_message_that_fails_alone_keeps_the_deferred_state(chunks, monkeypatch):
    """A message whose step fails is dead-lettered; the patient's deferred (unwritten) state survives it: the
    next write holds every earlier message's change (before the fix it was dropped with the cache entry and
    the write returned nothing, so those messages' changes were lost and their offsets never committed)."""
    values = _waves(chunks[:7])
    _, _, _, ref_history = _run(_proc(1), values[:6])
    proc = _proc(100)
    _, _, table, _ = _run(proc, values[:6])
    assert proc.deferred(b"p-1")
    real = proc.pipeline.step_many

    def failing(states, messages):
        real(states, messages)  # mutates the cached state, then breaks
        raise RuntimeError("boom")

    monkeypatch.setattr(proc.pipeline, "step_many", failing)
    (result,) = proc.process_batch([Item(WAVES, 0, 6, b"p-1", values[6][2], table.get(b"p-1"))])
    assert [kind for kind, _, _ in result.sends] == ["deadletter"]
    monkeypatch.setattr(proc.pipeline, "step_many", real)
    assert proc.deferred(b"p-1")
    assert proc.write(b"p-1") == ref_history[5][b"p-1"]
    assert not proc.deferred(b"p-1")


def test_the_table_moving_on_ends_the_deferral_when_nothing_changes_after(chunks):
    """Another worker wrote the patient's state past our unwritten messages (a rebalance), and the next message
    is a repeat against it: nothing is deferred any more, so the agent acknowledges the old messages
    (``settle``) instead of holding their partition's commit forever."""
    values = _waves(chunks[:7])
    ref = _proc(1)
    _, _, ref_table, _ = _run(ref, values)  # the other worker: seq 0-6 applied
    proc = _proc(100)
    _run(proc, values[:5])
    assert proc.deferred(b"p-1")
    (result,) = proc.process_batch([Item(WAVES, 0, 9, b"p-1", values[6][2], ref_table[b"p-1"])])
    assert result.new_state is None and not result.deferred  # a repeat: nothing to write
    assert not proc.deferred(b"p-1") and proc.unwritten() == 0
