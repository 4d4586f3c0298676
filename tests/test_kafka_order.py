"""Order and pairing through Kafka (one worker on Tansu): a555l with its chunks shuffled within blocks
of 3 gives the in-process in-order estimates; a calibration command read two chunks after its window
gives the same pairing and later estimates as one read on time."""

from __future__ import annotations

import numpy as np
import pytest

from ._data import record
from ._kafka import WorkerProcess, read_topic, settings_for
from .test_kafka_service import compare, in_process
from bpstream.stream.kafka._codec import dumps, encode_waveform
from bpstream.stream.core._messages import Calibrate, ChunkMessage, Event, WindowResult
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.kafka._schemas import command_doc, from_iso
from bpstream.stream.config._settings import Settings
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.kafka._topics import ensure_topics, producer
from bpstream.stream.kafka._publish import _messages, adc_gains

pytestmark = pytest.mark.kafka

START_S = 1_790_000_000.0


@pytest.fixture(scope="module")
def worker(tansu, tmp_path_factory):
    settings = settings_for(tansu, "order")
    proc = WorkerProcess(settings, tmp_path_factory.mktemp("order"))
    try:
        proc.wait_ready()
        ensure_topics(settings)
        yield settings
    finally:
        proc.stop()
    assert "Traceback" not in proc.log(), proc.log()[-3000:]


def _publish(settings: Settings, patient: str, messages: list[tuple[str, bytes]]) -> None:
    p = producer(settings)
    for topic, value in messages:
        p.send(topic, key=patient.encode(), value=value)
        p.flush()  # one by one: Kafka timestamps in this order (the worker merges topics by them)
    p.close()


def test_kafka_a555l_shuffled_within_blocks_of_3_equals_in_process(worker):
    settings, patient = worker, "shuffled-a555l"
    msgs = [(topic, value) for _, _, topic, value in
            _messages(record("a555l"), patient, 0, settings, Schedule.parse("once"), START_S, True, 0.0, None)]
    waves = [i for i, (topic, _) in enumerate(msgs) if topic == settings.topic_waveforms]
    rng = np.random.default_rng(3)
    order = []
    for a in range(0, len(waves), 3):
        block = waves[a : a + 3]
        order += [block[i] for i in rng.permutation(len(block))]
    shuffled = list(msgs)
    for slot, i in zip(waves, order):
        shuffled[slot] = msgs[i]
    assert shuffled != msgs
    _publish(settings, patient, shuffled)
    run = in_process("a555l")
    n = len(run.windows)
    docs = [d for d in read_topic(settings, settings.topic_estimates,
                                  lambda d: sum(x["patient_id"] == patient for x in d) >= n) if d["patient_id"] == patient]
    events = [e for e in read_topic(settings, settings.topic_events, lambda d: any(
        x["patient_id"] == patient and x["type"] == "calibration_accepted" for x in d)) if e["patient_id"] == patient]
    assert sorted(d["seq"] for d in docs) == list(range(1, n + 1))
    problems = compare(docs, run, START_S, events)
    assert not problems, "\n".join(problems[:5])
    assert not [e for e in events if e["type"] == "duplicate_ignored"]


def test_kafka_command_read_after_its_window_pairs_as_on_time(worker):
    settings, patient, path = worker, "late-cmd-f362s", record("f362s")
    rec = read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg"))
    chunks = list(iter_chunks(rec, 2.0, t0_s=START_S))[:45]
    pipeline = Pipeline(PipelineConfig(methods=("carry_forward",)))
    state, outs = None, []
    for i, c in enumerate(chunks):
        state, o = pipeline.step(state, ChunkMessage(i, c))
        outs += o
    usable = [w for w in outs if isinstance(w, WindowResult) and w.input_usable and w.t_end_s - START_S >= 40.0]
    t = usable[0].t_end_s - 0.5
    k = next(i for i, c in enumerate(chunks) if c.t_start_s + c.duration_s() >= usable[0].t_end_s - 1e-6)
    cal = Calibrate("late-cuff", measured_at_s=t, sbp_mmhg=133.0, dbp_mmhg=74.0, map_mmhg=95.0)
    # in-process reference: the command read before the chunk that completes its window
    state, ref = None, []
    for i, c in enumerate(chunks):
        if i == k:
            state, o = pipeline.step(state, cal)
            ref += o
        state, o = pipeline.step(state, ChunkMessage(i, c))
        ref += o
    gains = adc_gains(path, ("ecg", "ppg", "abp"))
    wave = [(settings.topic_waveforms, encode_waveform(patient, i, c, gains=gains)) for i, c in enumerate(chunks)]
    cmd = (settings.topic_commands, dumps(command_doc(patient, cal, START_S + 100.0)))
    _publish(settings, patient, wave[: k + 3] + [cmd] + wave[k + 3 :])  # read 2 chunks after its window
    windows = [w for w in ref if isinstance(w, WindowResult)]
    docs = [d for d in read_topic(settings, settings.topic_estimates,
                                  lambda d: sum(x["patient_id"] == patient for x in d) >= len(windows))
            if d["patient_id"] == patient]
    events = [e for e in read_topic(settings, settings.topic_events, lambda d: any(
        x.get("command_id") == "late-cuff" for x in d)) if e.get("command_id") == "late-cuff"]
    on_time = [e for e in ref if isinstance(e, Event) and e.command_id == "late-cuff"]
    assert [(e["type"], from_iso(e["at"])) for e in events] == [(on_time[0].kind.value, on_time[0].t_s)]
    # where the worker read the command: published after chunk k+2, but Kafka keeps no order between topics,
    # so the worker may have read a few more chunks first (the accepted event says how far: late_s); every
    # estimate published after that equals the on-time run's
    late_s = events[0]["detail"]["late_s"]
    assert chunks[k + 2].t_start_s + 2.0 - t - 1e-6 <= late_s <= 12.5  # not before it was sent; within the kept 3-6 windows
    arrived = t + late_s
    by_end = {round(from_iso(d["window_end"]), 6): d for d in docs}
    later = [w for w in windows if w.t_end_s > arrived]
    assert later and any(w.estimates["carry_forward"].sbp_mmhg for w in later)
    for w in later:
        d, est = by_end[round(w.t_end_s, 6)], w.estimates["carry_forward"]
        assert d["validity"] == est.validity.value
        assert (d["sbp"] or {}).get("value") == est.sbp_mmhg and d["calibration"]["count"] == w.calibration_count
