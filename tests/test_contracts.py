"""The generated contracts: JSON Schemas per topic and the AsyncAPI document.

The shipped files are what the wire models generate now; the README's examples and every message a real
Processor run produces validate against them; every dead-letter reason is produced and validates.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import jsonschema
import msgspec
import numpy as np
import pytest

from bpstream.filters import Reason
from bpstream.stream.kafka._codec import decode_channel, decode_command, decode_waveform, dumps, encode_waveform
from bpstream.stream.kafka._contract_examples import examples
from bpstream.stream.core._errors import MessageError
from bpstream.stream.kafka._contracts import ASYNCAPI_FILE, CONTRACTS_DIR, TOPICS, contract_files
from bpstream.stream.core._messages import Calibrate, Discharge, Reset
from bpstream.stream.kafka._processor import Item, Processor
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.kafka._schemas import COMMANDS, WAVEFORMS, Limits, command_doc
from bpstream.stream.kafka._wire_in import ChannelDoc
from bpstream.stream.config._settings import Settings
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.kafka._wire_types import BASE64_PATTERN, DEADLETTER_REASONS, PATIENT_ID_PATTERN
from bpstream.stream.cli import main

from ._contracts import assert_valid, validator
from ._data import record

README = Path(__file__).resolve().parents[1] / "README.md"
T0 = 1_780_000_000.0  # 2026-05-28


def test_shipped_contracts_are_what_the_models_generate_now():
    generated = contract_files()
    assert set(generated) == {f"{t}.json" for t in TOPICS} | {ASYNCAPI_FILE}
    assert {p.name for p in CONTRACTS_DIR.glob("*.json")} == set(generated)
    for name, text in generated.items():
        assert (CONTRACTS_DIR / name).read_text() == text, f"{name} is stale: run bpstream schemas --out {CONTRACTS_DIR}"


def test_schemas_command_writes_the_same_files(tmp_path, capsys):
    assert main(["schemas", "--out", str(tmp_path)]) == 0
    for name, text in contract_files().items():
        assert (tmp_path / name).read_text() == text
    assert str(tmp_path / ASYNCAPI_FILE) in capsys.readouterr().out


@pytest.mark.parametrize("topic", list(TOPICS))
def test_each_schema_is_valid_draft07_and_refuses_what_the_decoder_refuses(topic):
    schema = json.loads((CONTRACTS_DIR / f"{topic}.json").read_text())
    jsonschema.Draft7Validator.check_schema(schema)
    roots = [schema] if topic != COMMANDS else [schema["definitions"][r["$ref"].rsplit("/", 1)[-1]] for r in schema["anyOf"]]
    assert schema["title"] == topic and len(roots) == (3 if topic == COMMANDS else 1)
    assert all(r["properties"]["schema"] == {"enum": [topic]} and "schema" in r["required"] for r in roots)
    for _, doc in examples()[topic]:
        assert_valid(doc)
        assert not validator(topic).is_valid({**doc, "schema": topic.replace(".v1", ".v2")})
        assert not validator(topic).is_valid({k: v for k, v in doc.items() if k != "schema"})


def _readme_messages() -> list[dict]:
    """Every JSON document in the README's ```json blocks that names one of the topics' schemas."""
    docs, decoder = [], json.JSONDecoder()
    for block in re.findall(r"```json\n(.*?)```", README.read_text(), re.S):
        i = 0
        while i < len(block):
            if block[i].isspace():
                i += 1
                continue
            doc, i = decoder.raw_decode(block, i)
            if isinstance(doc, dict) and doc.get("schema") in TOPICS:
                docs.append(doc)
    return docs


def test_every_readme_example_message_validates_and_the_inputs_decode():
    docs = _readme_messages()
    counts = {t: sum(d["schema"] == t for d in docs) for t in TOPICS}
    assert counts == {WAVEFORMS: 1, COMMANDS: 2, "bp.estimates.v1": 2, "bp.events.v1": 3, "bp.deadletter.v1": 1}
    for doc in docs:
        assert_valid(doc)
        if doc["schema"] == WAVEFORMS:
            assert decode_waveform(dumps(doc)).message.seq == doc["seq"]
        elif doc["schema"] == COMMANDS:
            assert decode_command(dumps(doc)).command.command_id == doc["command_id"]


def test_asyncapi_document_names_every_topic_with_its_schema_key_and_examples():
    doc = json.loads((CONTRACTS_DIR / ASYNCAPI_FILE).read_text())
    assert doc["asyncapi"] == "3.0.0" and set(doc["channels"]) == {v[2] for v in TOPICS.values()}
    for topic, (_, action, cid, _) in TOPICS.items():
        channel, message = doc["channels"][cid], doc["components"]["messages"][cid]
        assert channel["address"] == topic and channel["bindings"]["kafka"]["topic"] == topic
        assert channel["messages"][cid] == {"$ref": f"#/components/messages/{cid}"}
        assert doc["operations"][f"{action}{cid.capitalize()}"]["channel"] == {"$ref": f"#/channels/{cid}"}
        ref = message["payload"]["schema"]["$ref"]
        assert (CONTRACTS_DIR / ref).is_file() and ref == f"./{topic}.json"
        key = message["bindings"]["kafka"]["key"]
        assert key["type"] == "string" and (topic == "bp.deadletter.v1" or key["pattern"] == PATIENT_ID_PATTERN)
        assert message["examples"]
        for ex in message["examples"]:
            assert_valid(ex["payload"])
            if topic != "bp.deadletter.v1":
                assert re.search(key["pattern"], ex["payload"]["patient_id"])
    assert {o["action"] for o in doc["operations"].values()} == {"send", "receive"}


@pytest.mark.parametrize("text", ["", "AAAA", "AAA=", "AA==", "AB==", "A", "AA", "AAA", "AA=", "A===", "====", "==",
                                  "AAAA\n", "AA AA", "AA-_", "AAAA====", "AA==AA==", "AAAA=", "AAAA==",
                                  "AAAAAAAAA===", "AAAAAAA=", "AAAAAA=="])
def test_the_base64_pattern_of_the_schemas_is_the_decoders_rule(text):
    doc = json.loads(encode_waveform("p-1", 0, next(iter_chunks(read_record(record("a555l")), 2.0, t0_s=T0))))
    doc["channels"]["ecg"]["samples"] = text
    try:
        decode_channel("ecg", msgspec.convert(doc["channels"]["ecg"], ChannelDoc), Limits())
        base64_ok = True
    except MessageError as exc:
        assert exc.reason == Reason.MSG_INVALID
        base64_ok = "not base64" not in exc.detail  # e.g. not a whole number of float32 values
    except msgspec.ValidationError:  # "": the model's min_length
        assert text == ""
        base64_ok = False
    assert bool(re.search(BASE64_PATTERN, text)) == base64_ok or text == ""
    assert validator(WAVEFORMS).is_valid(doc) == (base64_ok and text != "")


def _processor_run() -> list[tuple[str, dict]]:
    """A real Processor over a real record with commands and bad messages: every message it sends."""
    settings = Settings(topic_waveforms="w", topic_commands="c", methods=("carry_forward",), reorder_s=10.0)
    proc = Processor(settings, Pipeline(PipelineConfig(methods=("carry_forward",))), clock=lambda: T0 + 3600)
    chunks = list(iter_chunks(read_record(record("a555l")), 2.0, t0_s=T0))[:40]
    waves = [encode_waveform("p-1", seq, c, bed="icu-1", monitor_id="m-1") for seq, c in enumerate(chunks)]
    state: dict[bytes, bytes | None] = {}
    sends = []

    def put(topic: str, key: bytes, value: bytes, offset: int = 0):
        result = proc.process(Item(topic, 0, offset, key, value, state.get(key)))
        if result.new_state is not None:
            state[key] = result.new_state
        sends.extend((kind, json.loads(v)) for kind, _, v in result.sends)

    for seq in range(12):
        put("w", b"p-1", waves[seq])
    put("c", b"p-1", dumps(command_doc("p-1", Calibrate("c-1", chunks[13].t_start_s, 121.0, 72.0), T0 + 30)))
    put("c", b"p-1", dumps(command_doc("p-1", Calibrate("c-bad", chunks[13].t_start_s, 400.0, 10.0), T0 + 30)))
    for seq in range(12, 20):
        put("w", b"p-1", waves[seq])
    put("w", b"p-1", waves[3])  # a repeat: duplicate_ignored
    for seq in range(21, 27):  # seq 20 missing: more than 10 s held, the gap is given up ...
        put("w", b"p-1", waves[seq])
    put("w", b"p-1", waves[20])  # ... so seq 20 is late
    put("w", b"p-1", encode_waveform("p-1", 5000, chunks[27]))  # far ahead
    put("c", b"p-1", dumps(command_doc("p-1", Reset("r-1"), T0 + 60)))
    put("c", b"p-1", dumps(command_doc("p-1", Discharge("d-1"), T0 + 61)))
    put("c", b"p-2", dumps(command_doc("p-2", Reset("r-2"), T0 + 61)))  # unknown patient
    nan = np.zeros(500, dtype="<f4")
    nan[3] = np.nan
    doc = json.loads(waves[30])
    doc["channels"]["ppg"]["samples"] = base64.b64encode(nan.tobytes()).decode()
    bad = [b"{not json", dumps({**doc, "schema": "bp.waveforms.v2"}), dumps({**doc, "seq": -1}), dumps(doc)]
    for value in bad:
        put("w", b"p-1", value)
    put("w", b"p-1", waves[31] + b" " * 1_000_000)  # oversized
    put("w", b"\xff\xfe", waves[32])  # a key that is not UTF-8
    return sends


def test_every_message_of_a_real_processor_run_validates_and_every_deadletter_reason_occurs(monkeypatch):
    sends = _processor_run()

    def boom(self, states, messages):
        raise ValueError("boom")

    proc = Processor(Settings(topic_waveforms="w", topic_commands="c"), Pipeline(PipelineConfig()), clock=lambda: T0)
    monkeypatch.setattr(Pipeline, "step_many", boom)  # what the processor steps with
    wave = encode_waveform("p-9", 0, next(iter_chunks(read_record(record("a555l")), 2.0, t0_s=T0)))
    sends += [(k, json.loads(v)) for k, _, v in proc.process(Item("w", 0, 1, b"p-9", wave)).sends]
    for _, doc in sends:
        assert_valid(doc)
    kinds = {k for k, _ in sends}
    assert kinds == {"estimates", "events", "deadletter"}
    events = {d["type"] for k, d in sends if k == "events"}
    assert {"calibration_accepted", "calibration_rejected", "duplicate_ignored", "patient_reset",
            "patient_discharged"} <= events, events
    estimates = [d for k, d in sends if k == "estimates"]
    assert any(d["sbp"] is not None for d in estimates) and len(estimates) > 10
    reasons = {d["reason"] for k, d in sends if k == "deadletter"}
    assert reasons == {r.value for r in DEADLETTER_REASONS}, reasons ^ {r.value for r in DEADLETTER_REASONS}
    assert Reason.MSG_DUPLICATE.value not in reasons


def test_estimates_of_the_default_model_validate_with_its_weights_hash():
    settings = Settings(topic_waveforms="w", topic_commands="c")
    proc = Processor(settings, Pipeline(PipelineConfig(methods=settings.methods)), clock=lambda: T0)
    state, docs = None, []
    for seq, chunk in enumerate(list(iter_chunks(read_record(record("a555l")), 2.0, t0_s=T0))[:8]):
        result = proc.process(Item("w", 0, seq, b"p-1", encode_waveform("p-1", seq, chunk), state))
        state = result.new_state or state
        docs += [json.loads(v) for kind, _, v in result.sends]
    assert len(docs) >= 2 and {d["schema"] for d in docs} == {"bp.estimates.v1"}
    for doc in docs:
        assert_valid(doc)
        assert doc["model"]["name"] == settings.methods[0] and len(doc["model"]["weights_sha256"]) == 64
