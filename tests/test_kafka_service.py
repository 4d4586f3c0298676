"""The streaming service end to end on each real broker (Tansu, Apache Kafka): one worker process, the fixture records.

Replay publishes the four fixture records (chunks + arterial calibration commands on the ``once``
schedule); the estimates read back from Kafka must equal the in-process ``validate`` loop window by
window, and calibrations, malformed messages and duplicates must behave as documented.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import time

import numpy as np
import pytest

from ._data import record
from ._kafka import WorkerProcess, by_patient, read_topic, settings_for
from bpstream.stream.kafka._codec import dumps, encode_waveform
from bpstream.stream.core._messages import Calibrate
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.evaluation._replay_local import replay_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.kafka._schemas import command_doc, from_iso
from bpstream.stream.core._step import PipelineConfig
from bpstream.stream.kafka._topics import producer
from bpstream.stream.kafka import send_command
from bpstream.stream.kafka._publish import replay

pytestmark = pytest.mark.kafka

RECORDS = ("a555l", "f362s", "v370s", "b330s")
START_S = 1_780_000_000.0  # record second 0 on the wire (a whole second: times stay exact)


@functools.lru_cache(maxsize=None)
def in_process(name: str, schedule: str = "once", methods: tuple[str, ...] = ("carry_forward",)):
    config = PipelineConfig(methods=methods, arterial_schedule=Schedule.parse(schedule))
    return replay_record(record(name), config)


def compare(docs: list[dict], run, start_s: float, events: list[dict]) -> list[str]:
    """Window-by-window comparison; returns the differences not explained by a late calibration."""
    docs = sorted(docs, key=lambda d: d["seq"])
    assert len(docs) == len(run.windows), f"{len(docs)} estimates on Kafka, {len(run.windows)} windows in-process"
    late = [(from_iso(e["detail"]["measured_at"]) - start_s, e["detail"].get("late_s") or 0.0)
            for e in events if e["type"] == "calibration_accepted" and e["detail"].get("measured_at")]
    unexplained = []
    for doc, w in zip(docs, run.windows):
        assert abs(from_iso(doc["window_start"]) - start_s - w.t_start_s) < 1e-6
        assert abs(from_iso(doc["window_end"]) - start_s - w.t_end_s) < 1e-6
        est = w.estimates["carry_forward"]
        same = doc["validity"] == est.validity.value and doc["reasons"] == [r.value for r in est.reasons]
        for q, v in (("sbp", est.sbp_mmhg), ("dbp", est.dbp_mmhg), ("map", est.map_mmhg)):
            got = doc[q]["value"] if doc[q] else None
            same &= (got is None and v is None) or (got is not None and v is not None and abs(got - v) <= 1e-6)
        if not same:
            # a calibration the worker received after later windows had been predicted ("late") is
            # learned after those windows: their estimates legitimately differ from validate's
            if not any(0 < w.t_end_s - t <= lag for t, lag in late if lag > 0):
                unexplained.append(f"seq {doc['seq']} t_end {w.t_end_s}: kafka {doc['validity']} "
                                   f"{doc['sbp']} vs in-process {est}")
    return unexplained


@pytest.fixture(scope="module")
def service(broker, tmp_path_factory):
    settings = settings_for(broker, "svc")
    worker = WorkerProcess(settings, tmp_path_factory.mktemp("svc"))
    try:
        worker.wait_ready()
        paths = [record(n) for n in RECORDS]
        stats = replay(settings, paths, speed=0, calibration="once", start_s=START_S)
        yield settings, worker, stats
    finally:
        worker.stop()
    assert "Traceback" not in worker.log(), worker.log()[-3000:]


def test_replay_yields_estimates_for_every_patient_equal_to_validate(service):
    settings, worker, stats = service
    runs = {n: in_process(n) for n in RECORDS}
    expected = {n: len(r.windows) for n, r in runs.items()}
    docs = read_topic(settings, settings.topic_estimates,
                      lambda d: all(len(by_patient(d).get(n, [])) >= expected[n] for n in RECORDS))
    calibrated = [n for n in RECORDS if any(w.labels for w in runs[n].windows)]
    assert calibrated, "no fixture record was calibrated in-process"
    events = by_patient(read_topic(settings, settings.topic_events, lambda d: all(
        any(e["type"] == "calibration_accepted" for e in by_patient(d).get(n, [])) for n in calibrated)))
    per = by_patient(docs)
    assert set(per) >= set(RECORDS)
    for name in RECORDS:
        assert len(per[name]) == expected[name]
        assert [d["seq"] for d in per[name]] == list(range(1, expected[name] + 1))
        problems = compare(per[name], runs[name], START_S, events.get(name, []))
        assert not problems, f"{name}: " + "\n".join(problems[:5])
    # the replay calibrated every record that has a usable reference on the `once` schedule, and
    # the estimates after it carry numbers
    for name in calibrated:
        assert any(d["sbp"] and d["validity"] == "valid" for d in per[name])
    doc = per["a555l"][-1]
    assert doc["schema"] == "bp.estimates.v1" and doc["method"] == "estimated-ecg-ppg"
    assert doc["status"] == "preliminary" and doc["model"]["name"] == "carry_forward"


def _docs_for(settings, topic, patient, n, timeout_s=90.0):
    return [d for d in read_topic(settings, topic, lambda d: sum(x.get("patient_id") == patient for x in d) >= n,
                                  timeout_s=timeout_s) if d.get("patient_id") == patient]


def test_calibration_command_changes_estimates_and_emits_event(service):
    settings, worker, _ = service
    patient, path, start = "cal-1", record("f362s"), START_S
    replay(settings, [path], speed=0, calibration="off", start_s=start, t_to_s=60.0, ids=[patient])
    before = _docs_for(settings, settings.topic_estimates, patient, 26)
    assert len(before) == 26 and all(d["sbp"] is None for d in before)  # never calibrated: no numbers
    assert {d["validity"] for d in before} <= {"uncalibrated", "invalid"}
    # a cuff reading taken during the newest window: paired with it and learned at once
    send_command(settings, patient, Calibrate("cuff-1", start + 59.0, 150.0, 80.0, 104.0, "cuff"), operator="rn-1")
    # an implausible reading is rejected with its reason
    send_command(settings, patient, Calibrate("cuff-2", start + 59.5, 300.0, 80.0, None, "cuff"))
    events = _docs_for(settings, settings.topic_events, patient, 2)
    kinds = {e["command_id"]: e for e in events}
    assert kinds["cuff-1"]["type"] == "calibration_accepted"
    assert kinds["cuff-2"]["type"] == "calibration_rejected" and kinds["cuff-2"]["reason"] == "cuff_implausible"
    replay(settings, [path], speed=0, calibration="off", start_s=start, t_from_s=60.0, t_to_s=80.0, ids=[patient])
    after = _docs_for(settings, settings.topic_estimates, patient, 36)[26:]
    valid = [d for d in after if d["validity"] == "valid"]
    assert valid, [d["validity"] for d in after]
    for d in valid:
        assert d["sbp"]["value"] == 150.0 and d["dbp"]["value"] == 80.0
        assert d["map"]["value"] == 104.0
        assert d["calibration"]["count"] == 1 and d["calibration"]["age_s"] > 0
        assert d["sbp"]["mdc_code"] == 150017 and d["sbp"]["loinc"] == "8480-6" and d["sbp"]["unit"] == "mm[Hg]"


def _chunk_doc(patient: str, seq: int, start: float, n: int = 500, fs: float = 250.0, **override) -> dict:
    rng = np.random.default_rng(seq)
    x = rng.normal(size=n).astype("<f4")
    ch = {"fs_hz": fs, "encoding": "float32", "samples": base64.b64encode(x.tobytes()).decode()}
    doc = {"schema": "bp.waveforms.v1", "patient_id": patient, "seq": seq, "start_time": "2026-06-01T00:00:00Z",
           "channels": {"ecg": dict(ch), "ppg": dict(ch)}}
    doc.update(override)
    return doc


def test_malformed_messages_are_dead_lettered_or_ignored_while_others_flow(service):
    settings, worker, _ = service
    patient, path, start = "flow-1", record("a555l"), START_S
    run = in_process("a555l")
    replay(settings, [path], speed=0, calibration="once", start_s=start, t_to_s=100.0, ids=[patient])
    p = producer(settings)
    wv, cm = settings.topic_waveforms, settings.topic_commands
    nan = _chunk_doc("bad-nan", 0, start)
    x = np.ones(500, dtype="<f4")
    x[7] = np.nan
    nan["channels"]["ppg"]["samples"] = base64.b64encode(x.tobytes()).decode()
    long_chunk = _chunk_doc("bad-long", 0, start, n=250 * 61)  # 61 s > max_chunk_s
    huge = _chunk_doc("bad-huge", 0, start, n=100_000)  # > max_chunk_bytes
    bad = [
        (wv, b"bad-json", b"{this is not json", "msg_not_json"),
        (wv, b"bad-version", dumps(_chunk_doc("bad-version", 0, start, schema="bp.waveforms.v2")), "msg_schema_version"),
        (wv, b"bad-nan", dumps(nan), "msg_nan_samples"),
        (wv, b"bad-long", dumps(long_chunk), "msg_oversized"),
        (wv, b"bad-huge", dumps(huge), "msg_oversized"),
        (cm, b"nobody", dumps(command_doc("nobody", Calibrate("c-x", start + 5, 120.0, 70.0), time.time())),
         "msg_unknown_patient"),
        (wv, b"bad-key", dumps(_chunk_doc("someone-else", 0, start)), "msg_invalid"),
    ]
    for topic, key, value, _ in bad:
        p.send(topic, key=key, value=value)
    # duplicates: a chunk already applied, and the same command twice
    chunk3 = list(iter_chunks(read_record(path), 2.0, t0_s=start))[3]
    p.send(wv, key=patient.encode(), value=encode_waveform(patient, 3, chunk3))
    cmd = dumps(command_doc(patient, Calibrate("dup-cmd", start + 95.0, 170.0, 90.0), time.time()))
    p.send(cm, key=patient.encode(), value=cmd)
    p.send(cm, key=patient.encode(), value=cmd)
    p.flush()
    p.close()
    # the rest of the record keeps flowing through the same worker
    replay(settings, [path], speed=0, calibration="once", start_s=start, t_from_s=100.0, ids=[patient])

    dead = read_topic(settings, settings.topic_deadletter,
                      lambda d: {x["source"]["key"] for x in d} >= {k.decode() for _, k, _, _ in bad})
    reasons = {x["source"]["key"]: x for x in dead}
    for topic, key, value, reason in bad:
        doc = reasons[key.decode()]
        assert doc["reason"] == reason, doc
        assert doc["detail"] and doc["source"]["topic"] == topic and doc["source"]["offset"] is not None
        assert doc["payload_bytes"] == len(value)
        if len(value) <= 65536:
            assert base64.b64decode(doc["payload_b64"]) == value
    def both_duplicates(docs):
        mine = [e for e in docs if e.get("patient_id") == patient and e["type"] == "duplicate_ignored"]
        return any(e["detail"].get("seq") == 3 for e in mine) and any(e["command_id"] == "dup-cmd" for e in mine)

    events = [e for e in read_topic(settings, settings.topic_events, both_duplicates) if e["patient_id"] == patient]
    dup = [e for e in events if e["type"] == "duplicate_ignored"]
    assert any(e["detail"].get("seq") == 3 for e in dup), events
    assert any(e["command_id"] == "dup-cmd" for e in dup), events
    assert sum(e.get("command_id") == "dup-cmd" and e["type"] == "calibration_accepted" for e in events) <= 1
    docs = _docs_for(settings, settings.topic_estimates, patient, len(run.windows))
    assert [d["seq"] for d in sorted(docs, key=lambda d: d["seq"])] == list(range(1, len(run.windows) + 1))
    # the duplicate chunk did not advance anything; the extra cuff reading at 95 s (170/90) did
    # change the estimates after it, which the in-process run without it cannot know: compare up to it
    early = [d for d in docs if from_iso(d["window_end"]) - start <= 95.0]
    run = dataclasses.replace(run, windows=[w for w in run.windows if w.t_end_s <= 95.0])
    problems = compare(early, run, start, [e for e in events if e["type"] == "calibration_accepted"])
    assert not problems, "\n".join(problems[:5])
    later = [d for d in docs if from_iso(d["window_end"]) - start > 100.0 and d["validity"] == "valid"]
    assert later and all(d["sbp"]["value"] == 170.0 for d in later)


def test_validate_through_kafka_scores_like_in_process(service):
    """``bpstream validate --broker``: same metrics and JSON as the in-process run."""
    import argparse

    from bpstream.stream.kafka._kafka_validate import validate_via_kafka
    from bpstream.stream.evaluation._replay_local import score_results
    from bpstream.stream.evaluation._report import ScoreSheet

    settings, worker, _ = service
    config = PipelineConfig(methods=("carry_forward",), arterial_schedule=Schedule.parse("once"))
    paths = [record("f362s")]
    args = argparse.Namespace(broker=settings.broker, chunk_s=2.0)
    sheet = validate_via_kafka(args, config, paths, settings=settings, timeout_s=120.0)
    local = ScoreSheet(("carry_forward",))
    for path in paths:
        score_results(local, replay_record(path, config))
    protocol = {"calibration": "once"}
    via_kafka, in_proc = sheet.to_json(protocol), local.to_json(protocol)
    assert via_kafka["windows"] == in_proc["windows"] > 100  # f362s: 146 windows, calibrated at 30 s
    assert via_kafka["methods"] == in_proc["methods"]


def test_worker_refuses_topics_with_another_partition_count(broker, monkeypatch, capsys):
    """A broker that auto-creates topics picks its own partition count; the worker checks first."""
    from bpstream.stream.cli import main
    from bpstream.stream.kafka._topics import TopicsMismatch, ensure_topics

    settings = settings_for(broker, "parts", partitions=3)
    ensure_topics(settings)
    with pytest.raises(TopicsMismatch, match="has 3 partitions"):
        ensure_topics(settings.replace(partitions=4))
    for var, value in settings.replace(partitions=4).to_env().items():
        monkeypatch.setenv(var, value)
    assert main(["worker"]) == 1  # a runtime error: one line on stderr, exit 1 (usage errors exit 2)
    assert "BPSTREAM_PARTITIONS=4" in capsys.readouterr().err
