"""Issue 10, failures 6, 7 and 11 (ids, durations): strict, quiet decoding.

Depth and size before parsing, 64-bit integers, the plausible time range (the clock passed in by the
IO layer), the patient-id rule, exact channel durations; and no field value, payload content or
identifier in any log line or dead-letter ``detail``.
"""

from __future__ import annotations

import base64
import json
import logging

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bpstream.filters import Reason
from bpstream.stream.kafka._codec import decode_command, decode_waveform, dumps
from bpstream.stream.core._errors import MessageError
from bpstream.stream.core._messages import Calibrate
from bpstream.stream.kafka._processor import Item, Processor
from bpstream.stream.kafka._schemas import Limits, command_doc
from bpstream.stream.config._settings import Settings
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.kafka._wire_decode import _blank_strings, json_depth

NOW = 1_780_000_000.0  # the IO layer's clock in these tests (2026-05-28)


def _doc(n_ecg: int = 500, n_ppg: int = 500, **override) -> dict:
    def ch(n):
        return {"fs_hz": 250.0, "encoding": "float32",
                "samples": base64.b64encode(np.zeros(n, dtype="<f4").tobytes()).decode()}

    doc = {"schema": "bp.waveforms.v1", "patient_id": "p-1", "seq": 0, "start_time": "2026-05-28T00:00:00Z",
           "channels": {"ecg": ch(n_ecg), "ppg": ch(n_ppg)}}
    doc.update(override)
    return doc


def _reason(data: bytes) -> tuple[str, str]:
    with pytest.raises(MessageError) as info:
        decode_waveform(data, Limits(), now_s=NOW)
    return info.value.reason, info.value.detail


def test_deep_nesting_is_rejected_before_parsing_not_a_step_failure():
    deep = b'{"schema": "bp.waveforms.v1", "x": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    reason, detail = _reason(deep)
    assert reason == Reason.MSG_INVALID and "nested deeper" in detail
    reason, _ = _reason(b"[" * 100_000)  # not even closed: still no RecursionError
    assert reason in (Reason.MSG_INVALID, Reason.MSG_NOT_JSON)


_TRICKY = st.text(alphabet=st.sampled_from('ab"\\[]{}:,é\n'), max_size=8)
_JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**6, 10**6) | _TRICKY,
                            lambda kids: st.lists(kids, max_size=4) | st.dictionaries(_TRICKY, kids, max_size=4),
                            max_leaves=24)


def _depth(value) -> int:
    if isinstance(value, (list, dict)):
        return 1 + max(map(_depth, value.values() if isinstance(value, dict) else value), default=0)
    return 0


@given(_JSON_VALUES)
def test_the_nesting_depth_counted_on_the_bytes_is_the_documents(value):
    for data in (json.dumps(value).encode(), json.dumps(value, ensure_ascii=False).encode()):
        assert json_depth(_blank_strings(data)) == _depth(value)
    deep = json.dumps([[value]] * 200).encode()  # long bracket runs take the vectorised path
    assert json_depth(_blank_strings(deep)) == _depth(value) + 2


@pytest.mark.parametrize("start", ["9999-12-31T23:59:40Z", "1970-01-01T00:00:00Z", "1999-12-31T23:59:59Z",
                                   "2026-05-29T20:26:41Z"])  # the last: a day and 1 s after NOW
def test_implausible_start_times_are_invalid(start):
    assert _reason(dumps(_doc(start_time=start)))[0] == Reason.MSG_INVALID


def test_plausible_start_time_and_range_setting():
    assert decode_waveform(dumps(_doc(start_time="2026-05-28T23:59:00Z")), Limits(), now_s=NOW).message.seq == 0
    limits = Limits(t_min_s=0.0)
    assert decode_waveform(dumps(_doc(start_time="1970-01-02T00:00:00Z")), limits, now_s=NOW).message.seq == 0
    s = Settings.from_env({"BPSTREAM_TIME_MIN": "1990-01-01T00:00:00Z", "BPSTREAM_TIME_MAX_AHEAD_S": "60"})
    assert s.time_min_s == 631152000.0 and s.time_max_ahead_s == 60.0


@pytest.mark.parametrize("seq", [str(2**63), str(2**64), str(2**200), "-1", "1.5", '"3"', "9" * 5000, "1e400"])
def test_seq_must_be_a_64_bit_non_negative_integer(seq):
    text = json.dumps(_doc()).replace('"seq": 0', f'"seq": {seq}')
    assert _reason(text.encode())[0] in (Reason.MSG_INVALID, Reason.MSG_NOT_JSON)


@pytest.mark.parametrize("field, value", [("x", -(2**200)), ("channels", 10**25), ("channels", 2**63),
                                          ("x", -(2**63))])
def test_an_integer_beyond_64_bits_anywhere_is_refused_unparsed(field, value):
    doc = _doc()
    if field == "channels":
        doc["channels"]["ecg"]["fs_hz"] = value  # a number field: refused before msgspec reads it as a float
    else:
        doc["x"] = value  # an unknown field, which the model would otherwise skip
    reason, detail = _reason(dumps(doc))
    assert reason == Reason.MSG_INVALID and detail == "an integer beyond 64 bits"
    data = dumps(_doc(x=["FRACTION", "EXPONENT", "123456789012345678901234", 2**63 - 1, -(2**63 - 1)]))
    data = data.replace(b'"FRACTION"', b"1.00000000000000000000000001").replace(b'"EXPONENT"', b"-1e-99999999999999999999")
    assert b"99999999999999999999" in data and b"00000000000000000000000001" in data
    assert decode_waveform(data, now_s=NOW).message.seq == 0  # fractions, exponents and strings are no integers


def test_the_schema_is_checked_first_wherever_it_stands():
    for schema, expected in (("bp.waveforms.v2", Reason.MSG_SCHEMA_VERSION), ("bp.waveforms.v1", Reason.MSG_INVALID)):
        doc = {"seq": "not a number", **{k: v for k, v in _doc(schema=schema).items() if k != "seq"}}
        assert list(doc)[:2] == ["seq", "schema"]
        assert _reason(dumps(doc))[0] == expected
    assert _reason(dumps(_doc(seq="x")))[1] == "seq: expected `int`, got `str`"  # the field and the rule


def test_nan_and_infinity_literals_are_not_json():
    for literal in (b"NaN", b"Infinity", b"-Infinity"):
        data = dumps(_doc()).replace(b'"seq":0', b'"seq":' + literal)
        assert _reason(data)[0] == Reason.MSG_NOT_JSON


def test_largest_seq_is_accepted():
    assert decode_waveform(dumps(_doc(seq=2**63 - 1)), now_s=NOW).message.seq == 2**63 - 1


@pytest.mark.parametrize("pid", ["../../etc/passwd", ".hidden", "a/b", "a b", "a@b", "x" * 65, "", "é", "p-1\n"])
def test_patient_ids_outside_the_rule_are_rejected(pid):
    assert _reason(dumps(_doc(patient_id=pid)))[0] == Reason.MSG_INVALID


@pytest.mark.parametrize("pid", ["a555l", "ICU3-12:bed_4", "p.1", "0", "x" * 64])
def test_patient_ids_inside_the_rule_are_accepted(pid):
    assert decode_waveform(dumps(_doc(patient_id=pid)), now_s=NOW).patient_id == pid


def test_channels_must_have_the_same_duration_to_one_sample():
    assert _reason(dumps(_doc(n_ecg=100, n_ppg=101)))[0] == Reason.MSG_INVALID
    assert decode_waveform(dumps(_doc(n_ecg=100, n_ppg=100)), now_s=NOW).message.seq == 0
    doc = _doc(n_ecg=500, n_ppg=250)  # 250 Hz ECG beside 125 Hz PPG: 2 s each
    doc["channels"]["ppg"]["fs_hz"] = 125.0
    assert decode_waveform(dumps(doc), now_s=NOW).message.seq == 0


def test_a_channel_at_a_very_low_rate_cannot_stretch_the_chunk():
    # one 0.5-ms ECG sample beside one PPG sample at 1/60 Hz (one "sample period" apart: 60 s)
    doc = _doc(n_ecg=1, n_ppg=1)
    doc["channels"]["ecg"]["fs_hz"], doc["channels"]["ppg"]["fs_hz"] = 2000.0, 1.0 / 60.0
    assert _reason(dumps(doc))[0] == Reason.MSG_INVALID
    doc = _doc(n_ecg=2000, n_ppg=11)  # 1 s of ECG at 2000 Hz, 1.1 s of PPG at 10 Hz: 0.1 s apart
    doc["channels"]["ecg"]["fs_hz"], doc["channels"]["ppg"]["fs_hz"] = 2000.0, 10.0
    assert _reason(dumps(doc))[0] == Reason.MSG_INVALID
    doc["channels"]["ppg"]["samples"] = _doc(n_ppg=10)["channels"]["ppg"]["samples"]  # 1.0 s: agrees
    assert decode_waveform(dumps(doc), now_s=NOW).message.seq == 0


def test_a_huge_key_is_cut_in_its_dead_letter():
    proc = Processor(Settings(topic_waveforms="w", topic_commands="c"), Pipeline(PipelineConfig()), clock=lambda: NOW)
    key = b"\xff" * 350_000  # a key no patient id can be (at most 64 characters), far beyond the record limit
    result = proc.process(Item("w", 0, 1, key, dumps(_doc())))
    [(kind, sent_key, value)] = result.sends
    doc = json.loads(value)
    assert kind == "deadletter" and doc["reason"] == "msg_invalid"
    assert len(sent_key) <= 256 and len(doc["source"]["key"]) <= 256 and len(value) < 100_000


def test_command_times_are_range_checked():
    doc = command_doc("p-1", Calibrate("c-1", NOW - 5, 120.0, 70.0), NOW)
    assert decode_command(dumps(doc), now_s=NOW).command.command_id == "c-1"
    for field in ("measured_at", "issued_at"):
        for bad in ("9999-12-31T23:59:40Z", "1970-01-01T00:00:00Z"):
            with pytest.raises(MessageError) as info:
                decode_command(dumps({**doc, field: bad}), now_s=NOW)
            assert info.value.reason == Reason.MSG_INVALID


SECRET = "PATIENT-ZZ-9931-secret"


def _secret_messages() -> list[tuple[str, bytes, bytes]]:
    """(topic, key, value): each carries the secret in a field that fails or passes validation."""
    wave = _doc()
    cmd = command_doc("p-1", Calibrate("c-1", NOW - 5, 120.0, 70.0), NOW, operator="rn-1")
    out = [
        ("w", b"p-1", dumps({**wave, "start_time": SECRET})),
        ("w", b"p-1", dumps({**wave, "schema": SECRET})),
        ("w", b"p-1", dumps({**wave, "patient_id": SECRET + "/x"})),
        ("w", SECRET.encode(), dumps({**wave, "patient_id": SECRET})),  # key is a well-formed id: accepted
        ("w", b"p-1", dumps({**wave, "bed": SECRET * 10})),  # too long
        ("w", b"p-1", dumps({**wave, "monitor_id": {"x": SECRET}})),
        ("w", b"p-1", dumps({**wave, "seq": SECRET})),
        ("w", b"p-1", dumps({**wave, "channels": {**wave["channels"], SECRET: wave["channels"]["ecg"]}})),
        ("w", b"p-1", dumps({**wave, "channels": {"ecg": {**wave["channels"]["ecg"], "encoding": SECRET},
                                                  "ppg": wave["channels"]["ppg"]}})),
        ("w", b"p-1", dumps({**wave, "channels": {"ecg": {**wave["channels"]["ecg"], "samples": SECRET + "!"},
                                                  "ppg": wave["channels"]["ppg"]}})),
        ("w", b"p-1", dumps({**wave, "channels": {"ecg": {**wave["channels"]["ecg"], "gain": SECRET},
                                                  "ppg": {**wave["channels"]["ppg"], "unit": {SECRET: 1}}}})),
        ("w", b"p-1", dumps({**wave, "channels": {"ecg": wave["channels"]["ecg"], "ppg": {SECRET: 1}}})),
        ("w", b"p-1", (SECRET + "{").encode()),
        ("w", b"p-1", b'{"schema": "' + SECRET.encode() + b'\xff"}'),
        ("c", b"p-1", dumps({**cmd, "measured_at": SECRET})),
        ("c", b"p-1", dumps({**cmd, "type": SECRET})),
        ("c", b"p-1", dumps({**cmd, "operator": SECRET * 10})),
        ("c", b"p-1", dumps({**cmd, "command_id": {"id": SECRET}})),
        ("c", b"p-1", dumps({**cmd, "source": SECRET})),
        ("c", b"p-1", dumps({**cmd, "sbp_mmhg": SECRET})),
        ("c", SECRET.encode(), dumps({**cmd, "patient_id": SECRET})),  # unknown patient
    ]
    return out


def test_no_field_value_or_identifier_in_logs_or_deadletter_detail(caplog):
    # each message alone, against an empty table (state written on every message, so nothing is kept in memory)
    settings = Settings(topic_waveforms="w", topic_commands="c", state_every_chunks=1)
    proc = Processor(settings, Pipeline(PipelineConfig()), clock=lambda: NOW)
    caplog.set_level(logging.DEBUG)
    details = []
    for topic, key, value in _secret_messages():
        result = proc.process(Item(topic, 0, 1, key, value))
        for kind, _, doc in result.sends:
            if kind == "deadletter":
                d = json.loads(doc)
                details.append(d["detail"])
                assert d["reason"] != "msg_step_failed", d
    assert len(details) >= len(_secret_messages()) - 1
    assert not any(SECRET in d or "secret" in d.lower() for d in details), details
    assert SECRET not in caplog.text and "ZZ-9931" not in caplog.text


def test_a_step_failure_logs_no_exception_text(caplog):
    class Boom(Pipeline):
        def cut(self, state, message):  # every chunk's step (alone or in a batch) goes through here
            raise ValueError(f"bad value {SECRET}")

    proc = Processor(Settings(topic_waveforms="w", topic_commands="c"), Boom(PipelineConfig()), clock=lambda: NOW)
    caplog.set_level(logging.DEBUG)
    results = [proc.process(Item("w", 0, 1, b"p-1", dumps(_doc())))]
    results += proc.process_batch([Item("w", 0, 2, b"p-2", dumps(_doc(patient_id="p-2")))])
    for result in results:
        doc = json.loads(result.sends[0][2])
        assert doc["reason"] == "msg_step_failed" and SECRET not in doc["detail"]
    assert SECRET not in caplog.text and "ValueError" in caplog.text
