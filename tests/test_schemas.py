"""Wire schemas and codecs: round trips, every rejection with its reason, settings, state codec."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from bpstream.filters import Reason
from bpstream.models import Estimate, StateError, Validity
from bpstream.stream.kafka._codec import (
    deadletter_doc,
    decode_command,
    decode_waveform,
    dumps,
    encode_channel,
    encode_waveform,
    estimate_doc,
)
from bpstream.stream.core._errors import MessageError
from bpstream.stream.core._messages import Calibrate, ChunkMessage, Reset, WindowResult
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.kafka._schemas import Limits, command_doc, from_iso, parse_command, to_iso
from bpstream.stream.config._settings import Settings, SettingsError
from bpstream.stream.core._state_codec import state_from_bytes, state_to_bytes
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.kafka._publish import adc_gains

from ._data import record

T0 = 1_780_000_000.0


def _doc(**override) -> dict:
    x = base64.b64encode(np.zeros(500, dtype="<f4").tobytes()).decode()
    ch = {"fs_hz": 250.0, "encoding": "float32", "samples": x}
    doc = {"schema": "bp.waveforms.v1", "patient_id": "p-1", "seq": 0, "start_time": "2026-06-01T00:00:00Z",
           "channels": {"ecg": dict(ch), "ppg": dict(ch)}}
    doc.update(override)
    return doc


def _reason(data: bytes, limits: Limits = Limits()) -> Reason:
    with pytest.raises(MessageError) as info:
        decode_waveform(data, limits)
    return info.value.reason


def test_int16_with_the_record_gain_round_trips_bit_for_bit():
    path = record("b330s")
    rec = read_record(path)
    gains = adc_gains(path, ("ecg", "ppg", "abp"))
    assert set(gains) == {"ecg", "ppg", "abp"}
    for seq, chunk in enumerate(list(iter_chunks(rec, 2.0, t0_s=T0))[:40]):
        data = encode_waveform("b330s", seq, chunk, gains=gains, bed="icu-1")
        doc = json.loads(data)
        assert all(ch["encoding"] == "int16" for ch in doc["channels"].values())
        msg = decode_waveform(data)
        assert msg.patient_id == "b330s" and msg.bed == "icu-1" and msg.message.seq == seq
        assert msg.message.chunk.t_start_s == chunk.t_start_s
        for role, x in chunk.signals.items():
            np.testing.assert_array_equal(msg.message.chunk.signals[role], x)  # NaN in the same places too
            assert msg.message.chunk.fs_hz[role] == chunk.fs_hz[role]


def test_float32_encoding_and_int16_missing_samples():
    x = np.array([0.5, -1.25, 3.0])
    ch = encode_channel(x, 125.0, "mV")
    assert ch["encoding"] == "float32"
    y = np.array([1.0, np.nan, 2.0])
    ch = encode_channel(y, 125.0, gain=200.0)
    assert ch["encoding"] == "int16"
    raw = np.frombuffer(base64.b64decode(ch["samples"]), "<i2")
    assert raw[1] == -32768
    with pytest.raises(ValueError):
        encode_channel(y, 125.0)  # NaN has no float32 wire form


@pytest.mark.parametrize("data, reason", [
    (b"\xff\xfe not json", Reason.MSG_NOT_JSON),
    (b"", Reason.MSG_NOT_JSON),
    (dumps(_doc(schema="bp.waveforms.v2")), Reason.MSG_SCHEMA_VERSION),
    (dumps({k: v for k, v in _doc().items() if k != "schema"}), Reason.MSG_SCHEMA_VERSION),
    (b"[1, 2]", Reason.MSG_INVALID),
    (dumps(_doc(patient_id="")), Reason.MSG_INVALID),
    (dumps(_doc(patient_id="a b")), Reason.MSG_INVALID),
    (dumps(_doc(seq=-1)), Reason.MSG_INVALID),
    (dumps(_doc(seq=True)), Reason.MSG_INVALID),
    (dumps(_doc(start_time="2026-06-01T00:00:00")), Reason.MSG_INVALID),  # no UTC offset
    (dumps(_doc(start_time=12)), Reason.MSG_INVALID),
    (dumps(_doc(channels={"ecg": _doc()["channels"]["ecg"]})), Reason.MSG_INVALID),  # no ppg
    (dumps(_doc(channels={**_doc()["channels"], "eeg": _doc()["channels"]["ecg"]})), Reason.MSG_INVALID),
])
def test_bad_waveform_messages_are_rejected_with_a_reason(data, reason):
    assert _reason(data) == reason


def test_bad_samples_are_rejected_with_a_reason():
    nan = np.zeros(500, dtype="<f4")
    nan[3] = np.inf
    doc = _doc()
    doc["channels"]["ppg"]["samples"] = base64.b64encode(nan.tobytes()).decode()
    assert _reason(dumps(doc)) == Reason.MSG_NAN_SAMPLES
    doc = _doc()
    doc["channels"]["ppg"]["samples"] = "not base64!!"
    assert _reason(dumps(doc)) == Reason.MSG_INVALID
    doc = _doc()
    doc["channels"]["ppg"]["samples"] = base64.b64encode(b"abc").decode()  # not whole float32 values
    assert _reason(dumps(doc)) == Reason.MSG_INVALID
    doc = _doc()
    doc["channels"]["ppg"]["fs_hz"] = 125.0  # 4 s of PPG beside 2 s of ECG
    assert _reason(dumps(doc)) == Reason.MSG_INVALID
    doc = _doc()
    doc["channels"]["ecg"].update(encoding="int16", gain=0.0)
    doc["channels"]["ecg"]["samples"] = base64.b64encode(np.zeros(500, "<i2").tobytes()).decode()
    assert _reason(dumps(doc)) == Reason.MSG_INVALID
    for ch in doc["channels"].values():
        ch["fs_hz"] = 5000.0
    assert _reason(dumps(doc)) == Reason.MSG_INVALID


def test_size_limits():
    data = dumps(_doc())
    assert _reason(data, Limits(max_chunk_bytes=len(data) - 1)) == Reason.MSG_OVERSIZED
    assert _reason(data, Limits(max_chunk_s=1.0)) == Reason.MSG_OVERSIZED  # 2 s chunk
    assert decode_waveform(data, Limits(max_chunk_bytes=len(data), max_chunk_s=2.0)).message.seq == 0


def test_commands_round_trip_and_validate():
    cal = Calibrate("c-1", T0 + 30.25, 121.0, 71.5, None, "cuff")
    doc = command_doc("p-1", cal, T0 + 31.0, operator="rn-7")
    assert doc["type"] == "calibrate" and doc["measured_at"].endswith("Z") and "map_mmhg" not in doc
    msg = decode_command(dumps(doc))
    assert msg.command == cal and msg.patient_id == "p-1" and msg.operator == "rn-7" and msg.issued_at_s == T0 + 31
    assert parse_command(command_doc("p-1", Reset("r-1"), T0)).command == Reset("r-1")
    for bad in ({**doc, "type": "recalibrate"}, {**doc, "source": "finger"}, {**doc, "sbp_mmhg": "120"},
                {**doc, "sbp_mmhg": float("nan")}, {k: v for k, v in doc.items() if k != "measured_at"},
                {**doc, "command_id": ""}):
        with pytest.raises(MessageError) as info:
            parse_command(json.loads(json.dumps(bad)))
        assert info.value.reason == Reason.MSG_INVALID
    with pytest.raises(MessageError) as info:
        parse_command({**doc, "schema": "bp.commands.v0"})
    assert info.value.reason == Reason.MSG_SCHEMA_VERSION


def test_times_are_exact_for_whole_seconds_plus_chunk_offsets():
    for k in range(0, 400, 7):
        t = T0 + 2.0 * k
        assert from_iso(to_iso(t)) == t
    assert from_iso("2026-06-01T02:00:00+02:00") == from_iso("2026-06-01T00:00:00Z")


def _result(est: Estimate, usable: bool = True) -> WindowResult:
    return WindowResult(seq=7, t_start_s=T0, t_end_s=T0 + 10, segment=0, input_usable=usable,
                        input_reasons=() if usable else (Reason.PPG_FLAT,), ecg_score=0.9, ppg_score=0.8,
                        reference=None, estimates={"carry_forward": est}, calibration_count=2,
                        calibration_age_s=42.0)


def test_estimate_document_carries_codes_units_and_no_numbers_when_rejected():
    model = {"name": "carry_forward", "version": "0.1.0", "weights_sha256": None}
    doc = estimate_doc("p-1", _result(Estimate(120.0, 80.0, 93.0, 5.0, 4.0, 3.0)), "carry_forward", model=model,
                       published_at_s=T0 + 11)
    assert doc["sbp"] == {"value": 120.0, "unit": "mm[Hg]", "sd": 5.0, "mdc_code": 150017,
                          "mdc_ref_id": "MDC_PRESS_BLD_SYS", "loinc": "8480-6"}
    assert (doc["dbp"]["mdc_code"], doc["dbp"]["loinc"]) == (150018, "8462-4")
    assert (doc["map"]["mdc_code"], doc["map"]["loinc"]) == (150019, "8478-0")
    assert doc["method"] == "estimated-ecg-ppg" and doc["status"] == "preliminary" and doc["validity"] == "valid"
    assert doc["calibration"] == {"count": 2, "age_s": 42.0} and doc["seq"] == 7
    rejected = Estimate.empty(Validity.INVALID, (Reason.PPG_FLAT,))
    doc = estimate_doc("p-1", _result(rejected, usable=False), "carry_forward", model=model, published_at_s=T0)
    assert doc["validity"] == "invalid" and doc["reasons"] == ["ppg_flat"]
    assert doc["sbp"] is None and doc["dbp"] is None and doc["map"] is None
    nan = estimate_doc("p-1", _result(Estimate(float("nan"), 80.0, None)), "carry_forward", model=model,
                       published_at_s=T0)
    assert nan["sbp"] is None and json.loads(dumps(nan))["dbp"]["value"] == 80.0


def test_deadletter_keeps_source_and_a_bounded_payload():
    doc = deadletter_doc(Reason.MSG_OVERSIZED, "too big", topic="bp.waveforms.v1", partition=3, offset=99,
                         key=b"p-1", payload=b"x" * 100_000, failed_at_s=T0)
    assert doc["reason"] == "msg_oversized" and doc["source"] == {"topic": "bp.waveforms.v1", "partition": 3,
                                                                  "offset": 99, "key": "p-1"}
    assert doc["payload_bytes"] == 100_000 and doc["payload_truncated"]
    assert len(base64.b64decode(doc["payload_b64"])) == 65536


def test_settings_from_env_and_back():
    env = {"BPSTREAM_BROKER": "kafka://k1:9093;k2:9093", "BPSTREAM_PARTITIONS": "16", "BPSTREAM_STORE": "rocksdb://",
           "BPSTREAM_SECURITY_PROTOCOL": "SASL_SSL", "BPSTREAM_SASL_MECHANISM": "SCRAM-SHA-512",
           "BPSTREAM_SASL_USERNAME": "w", "BPSTREAM_SASL_PASSWORD": "secret", "BPSTREAM_METHODS": "mean,carry_forward"}
    s = Settings.from_env(env)
    assert s.bootstrap_servers == ["k1:9093", "k2:9093"] and s.partitions == 16 and s.methods == ("mean", "carry_forward")
    cfg = s.kafka_python_config()
    assert cfg["sasl_mechanism"] == "SCRAM-SHA-512" and cfg["sasl_plain_password"] == "secret"
    assert "secret" not in repr(s)
    assert Settings.from_env(s.to_env()) == s
    assert Settings.from_env(env, broker="x:1").broker == "x:1"
    with pytest.raises(SettingsError):
        Settings.from_env({"BPSTREAM_STORE": "redis://"})
    with pytest.raises(SettingsError):
        Settings.from_env({"BPSTREAM_PARTITIONS": "many"})


def test_state_codec_round_trip_changes_nothing():
    """A state written to bytes and read back after every chunk gives the very same outputs."""
    pipe = Pipeline(PipelineConfig(methods=("mean", "carry_forward"), arterial_schedule=Schedule.parse("every:20")))
    chunks = list(iter_chunks(read_record(record("a555l")), 2.0, t0_s=T0))[:45]
    plain = restored = None
    out_plain, out_restored = [], []
    for seq, chunk in enumerate(chunks):
        plain, out = pipe.step(plain, ChunkMessage(seq, chunk))
        out_plain += out
        if restored is not None:
            restored = state_from_bytes(state_to_bytes(restored), pipe)
        restored, out = pipe.step(restored, ChunkMessage(seq, chunk))
        out_restored += out
    assert out_plain == out_restored
    assert sum(1 for o in out_plain if isinstance(o, WindowResult) and o.labels) >= 2


def test_state_codec_refuses_foreign_classes():
    from bpstream.models import pack

    pipe = Pipeline(PipelineConfig())
    state = pipe.new_state()
    good = state_to_bytes(state)
    assert state_from_bytes(good, pipe).last_seq == -1
    evil = pack({"version": 1, "estimators": {}, "classes": {}, "rest": {"windower": {"O": "os:system", "v": {}}}})
    with pytest.raises(StateError):
        state_from_bytes(evil, pipe)


def test_replay_loops_records_under_distinct_patient_ids():
    from bpstream.stream.kafka._publish import patient_ids

    assert patient_ids(["a", "b"], None) == [("a", 0), ("b", 1)]
    ids = patient_ids(["a", "b"], 5)
    assert ids == [("a", 0), ("b", 1), ("a.1", 0), ("b.1", 1), ("a.2", 0)]
    assert len({p for p, _ in patient_ids(["a", "b", "c"], 100)}) == 100


def test_tail_lines_show_numbers_only_when_there_are_numbers():
    from bpstream.stream.kafka import format_estimate, format_event

    model = {"name": "carry_forward", "version": "0.1.0", "weights_sha256": None}
    doc = estimate_doc("p-1", _result(Estimate(120.4, 80.0, 93.0, 5.0, 4.0, 3.0)), "carry_forward", model=model,
                       published_at_s=T0)
    line = format_estimate(doc)
    assert "120/80 (93) mmHg" in line and "valid" in line and "±8" in line and "cal 2 42s ago" in line
    bad = estimate_doc("p-1", _result(Estimate.empty(Validity.INVALID, (Reason.PPG_FLAT,)), usable=False),
                       "carry_forward", model=model, published_at_s=T0)
    assert "---/--- (---)" in format_estimate(bad) and "ppg_flat" in format_estimate(bad)
    assert "calibration_rejected (cuff_stale)" in format_event(
        {"patient_id": "p-1", "type": "calibration_rejected", "reason": "cuff_stale", "at": to_iso(T0),
         "published_at": to_iso(T0)})
