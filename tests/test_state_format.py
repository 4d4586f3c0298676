"""Issue 10, failure 10: patient state survives code changes (tags, versions, migrations, formats 1 and 2).

``tests/fixtures/state_v0_synthetic.bin`` was written by the codec of commit 02a7ee8 (classes named by
``module:qualname``) from a synthetic patient (``tests/make_state_fixture.py``); it must still read.
Format 3 itself (msgpack): ``tests/test_state_msgpack.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from bpstream.filters import Reason, Windower, stateful
from bpstream.filters._stateful import STATE_CLASSES, migrates, tag_of
from bpstream.models import StateError
from bpstream.stream.kafka._codec import dumps
from bpstream.stream.core._messages import EventKind
from bpstream.stream.kafka._processor import Item, Processor
from bpstream.stream.config._settings import Settings
from bpstream.stream.core._msgpack_tree import tree_from_bytes, tree_to_bytes
from bpstream.stream.core._state_codec import _document, salvage_counters, state_from_bytes, state_to_bytes

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parent))
from make_state_fixture import pipeline, synthetic_chunks  # noqa: E402


def test_state_written_by_the_old_codec_reads_and_is_rewritten_in_the_new_format():
    data = (FIXTURES / "state_v0_synthetic.bin").read_bytes()
    facts = json.loads((FIXTURES / "state_v0_synthetic.json").read_text())
    p = pipeline()
    state = state_from_bytes(data, p)
    assert (state.last_seq, state.out_seq, state.calibrations) == (facts["last_seq"], facts["out_seq"],
                                                                   facts["calibrations"])
    assert state.estimators["carry_forward"].last_ == facts["carry_forward_last"]  # learned state kept
    assert hashlib.sha256(state.estimators["ttt"].to_bytes()).hexdigest() == facts["ttt_state_sha256"]
    # the v0 gates named their rate sampling_rate; the migrations (gates, input and label filter v1 -> v2) rename it
    for part in (state.gates, state.gates.input_filter_, state.gates.label_filter_):
        assert part.fs_hz == 125.0 and "sampling_rate" not in vars(part)
    new = state_to_bytes(state)
    assert b"sampling_rate" not in new
    assert b"bpstream." not in new and b":Windower" not in new  # no module paths in the new format
    assert new[:4] == b"BPS3" and _document(new)[0] == 3
    again = state_from_bytes(new, p)
    assert state_to_bytes(again) == new
    # and the patient goes on: the next chunks give the next estimates
    chunks = list(synthetic_chunks(50.0))[facts["last_seq"] + 1:]
    outs = []
    for m in chunks:
        again, o = p.step(again, m)
        outs.extend(o)
    seqs = [o.seq for o in outs if hasattr(o, "seq")]
    assert seqs and seqs[0] == facts["out_seq"] + 1
    assert all(o.estimates["carry_forward"].sbp_mmhg == facts["carry_forward_last"][0]
               for o in outs if hasattr(o, "estimates") and o.input_usable)


def test_a_moved_class_still_reads_because_the_state_names_tags():
    p = pipeline()
    state = None
    for m in list(synthetic_chunks(12.0)):
        state, _ = p.step(state, m)
    data = state_to_bytes(state)
    assert b"filters.windower" in data  # the part is named by its tag ...
    assert b"Windower" not in data and b"bpstream.filters" not in data  # ... never by class or module
    original = Windower.__module__
    try:
        Windower.__module__ = "bpstream.filters._somewhere_else"  # what a refactor does to module:qualname
        Windower.__qualname__ = "RenamedWindower"
        assert state_to_bytes(state) == data  # the moved class writes the same bytes
        assert state_from_bytes(data, p).windower.t_next_s_ == state.windower.t_next_s_
    finally:
        Windower.__module__, Windower.__qualname__ = original, "Windower"


def test_older_versions_are_migrated_and_unknown_parts_are_refused():
    @stateful("test.counter", version=2)
    class Counter:
        def __init__(self):
            self.n_ = 0
            self.total_ = 0

    @migrates("test.counter", from_version=1)
    def _v1_to_v2(values):
        return {**values, "total_": values["n_"] * 10}

    try:
        assert tag_of(Counter()) == ("test.counter", 2)
        from bpstream.stream.core._state_codec import _Reader

        old = {"O": "test.counter", "n": 1, "v": {"n_": 3}}
        obj = _Reader(legacy=False).dec(old)
        assert isinstance(obj, Counter) and obj.total_ == 30
        with pytest.raises(KeyError):
            _Reader(legacy=False).dec({"O": "test.counter", "n": 3, "v": {}})  # newer than this code
        with pytest.raises(StateError):
            _Reader(legacy=False).dec({"O": "test.nobody", "n": 1, "v": {}})
    finally:
        STATE_CLASSES.pop("test.counter", None)


def test_an_untagged_class_in_the_state_is_refused_with_a_hint():
    class Untagged:
        pass

    state = pipeline().new_state()
    state.pending = [Untagged()]
    with pytest.raises(StateError, match="stateful"):
        state_to_bytes(state)


def test_plain_data_fields_need_nothing():
    p = pipeline()
    state = p.new_state()
    state.seen_commands = ["a", "b"]
    state.last_seq = 7
    back = state_from_bytes(state_to_bytes(state), p)
    assert back.seen_commands == ["a", "b"] and back.last_seq == 7


def test_an_unreadable_state_resets_the_patient_with_an_event_not_a_deadletter():
    settings = Settings(topic_waveforms="w", topic_commands="c", methods=("carry_forward",))
    p = pipeline()
    proc = Processor(settings, p, clock=lambda: 1_780_000_100.0)
    state = p.new_state()
    state.out_seq, state.last_seq = 41, 3
    data = state_to_bytes(state)
    doc = tree_from_bytes(data[4:])
    doc["rest"]["windower"] = {"O": "filters.no_such_part", "n": 1, "v": {}}
    broken = data[:4] + tree_to_bytes(doc)
    assert salvage_counters(broken) == {"last_seq": 3, "out_seq": 41}
    from bpstream.stream.kafka._codec import encode_waveform

    chunk = list(synthetic_chunks(12.0))[4]
    for _ in range(2):  # every later message too: never a dead-letter
        result = proc.process(Item("w", 0, 1, b"p-1", encode_waveform("p-1", 4, chunk.chunk), state_bytes=broken))
        kinds = [k for k, _, _ in result.sends]
        assert "deadletter" not in kinds
        events = [json.loads(v) for k, _, v in result.sends if k == "events"]
        assert events[0]["type"] == EventKind.PATIENT_RESET.value
        assert events[0]["reason"] == Reason.STATE_UNREADABLE.value
        fresh = state_from_bytes(result.new_state, p)
        assert fresh.out_seq >= 41 and fresh.last_seq == 4  # identities never go backwards
    result = proc.process(Item("c", 0, 2, b"p-1", dumps({"schema": "bp.commands.v1", "type": "reset",
                                                            "patient_id": "p-1", "command_id": "r-1",
                                                            "issued_at": "2026-05-28T20:00:00Z"}),
                               state_bytes=b"garbage"))
    assert [json.loads(v)["reason"] for k, _, v in result.sends if k == "events"][0] == "state_unreadable"


def test_a_tag_is_not_taken_over_by_another_class_of_the_same_name():
    from bpstream.filters import register_state, state_class

    impostor = type("Windower", (), {"__module__": "somewhere.else", "__qualname__": "Windower"})
    with pytest.raises(ValueError, match="taken"):
        register_state(impostor, "filters.windower")
    assert state_class("filters.windower") is Windower

