"""Issue 14: patient state format 3 (msgpack through msgspec, magic ``BPS3``); formats 2 and 1 still read.

``tests/fixtures/state_v2_synthetic.bin`` was written by the format-2 codec (JSON header and raw
buffers) of commit b00db86 from a synthetic patient stepped through every estimator
(``tests/make_state_fixture.py --all``); it must read, and its next write is format 3.
"""

from __future__ import annotations

import copy

import enum
import hashlib
import json
import math
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bpstream.models import StateError, pack
from bpstream.stream.core import PatientState
from bpstream.stream.core._messages import Calibrate
from bpstream.stream.core._msgpack_tree import tree_from_bytes, tree_to_bytes
from bpstream.stream.core._state_codec import _document, _enc, _Reader, salvage_counters, state_from_bytes, state_to_bytes

FIXTURES = Path(__file__).parent / "fixtures"
sys.path.insert(0, str(Path(__file__).parent))
from make_state_fixture import ALL_METHODS, pipeline, synthetic_chunks  # noqa: E402


def same(a, b) -> bool:
    """Equal to the bit and of the same type all the way down (NaN equals NaN, -0.0 is not 0.0)."""
    if isinstance(a, enum.Enum) and isinstance(a, str):  # str-valued enums are kept as their value, by design
        return type(b) is str and a.value == b  # (e.g. Gates.label_mode: LabelMode(...) on use)
    if type(a) is not type(b):
        return False
    if isinstance(a, (np.ndarray, np.generic)):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    if isinstance(a, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if hasattr(a, "__dict__"):
        return same(vars(a), vars(b))
    return a == b


def doc3(data: bytes) -> dict:
    assert data[:4] == b"BPS3"
    return tree_from_bytes(data[4:])


def bytes3(doc: dict) -> bytes:
    return b"BPS3" + tree_to_bytes(doc)


# -- the tree codec --------------------------------------------------------------------------------------

_DTYPES = ["<f8", ">f8", "<f4", "<f2", "<i8", ">i4", "|i1", "<u2", "|u1", "|b1", "<c16", "<U3", "|S2",
           "<M8[s]", "<m8[ms]"]
_ARRAYS = st.sampled_from(_DTYPES).flatmap(
    lambda d: hnp.arrays(np.dtype(d), hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)))
_SCALARS = st.sampled_from(_DTYPES).flatmap(lambda d: hnp.arrays(np.dtype(d), ())).map(lambda a: a[()])
_LEAVES = (st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1) | st.floats() | st.text() | st.binary()
           | _ARRAYS | _SCALARS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(_LEAVES, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(st.text(max_size=4), kids,
                                                                                          max_size=4), max_leaves=16))
def test_tree_codec_round_trips_every_value_exactly(tree):
    back = tree_from_bytes(tree_to_bytes(tree))
    assert same(tree, back)
    assert all(a.flags.writeable and a.flags.owndata for a in _arrays(back))  # never a view of the bytes


def _arrays(node) -> list:
    """Every numpy array in a decoded tree."""
    if isinstance(node, np.ndarray):
        return [node]
    if isinstance(node, dict):
        node = list(node.values())
    return [a for x in node for a in _arrays(x)] if isinstance(node, (list, tuple)) else []


@settings(max_examples=200, deadline=None)
@given(st.recursive(_LEAVES, lambda kids: st.lists(kids, max_size=3) | st.tuples(kids, kids)
                    | st.dictionaries(st.sampled_from(["T", "M", "D", "O", "E", "v", "n", "x"]), kids, max_size=3),
                    max_leaves=12))
def test_state_trees_keep_tuples_and_dicts_whatever_their_keys(value):
    assert same(_Reader(legacy=False).dec(tree_from_bytes(tree_to_bytes(_enc(value)))), value)


def test_floats_round_trip_to_the_bit():
    values = [math.nan, -math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308, 0.1]
    back = tree_from_bytes(tree_to_bytes(values))
    assert [struct.pack("<d", v) for v in back] == [struct.pack("<d", v) for v in values]


def test_values_it_does_not_hold_are_refused_both_ways():
    for bad in (np.array([object()]), np.zeros(2, "i4,f8"), 2**64, object()):
        with pytest.raises(StateError):
            tree_to_bytes(bad)
    good = tree_to_bytes(np.arange(3.0))
    for corrupt in (good[:-1], good[:5], good + b"\x00", b"\xc7\x03\x05abc",  # truncated, trailing, unknown ext
                    good.replace(b"<f8", b"|O8"), good.replace(b"<f8", b"<f4")):  # object dtype, wrong size
        with pytest.raises(StateError):
            tree_from_bytes(corrupt)


# -- the patient state -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def stepped():
    """A synthetic patient through every estimator: an arterial calibration, a cuff reading, the journal."""
    p = pipeline(ALL_METHODS)
    chunks = list(synthetic_chunks(60.0))
    state = None
    for m in chunks[:22]:
        state, _ = p.step(state, m)
    state, _ = p.step(state, Calibrate("cuff-1", chunks[20].chunk.t_start_s, 118.0, 71.0, None))
    return p, state, chunks


def _go_on(p, state, messages) -> list:
    outs = []
    for m in messages:
        state, o = p.step(state, m)
        outs.extend(o)
    return outs


def test_a_stepped_patient_round_trips_exactly_and_goes_on_alike(stepped):
    p, state, chunks = stepped
    data = state_to_bytes(state)
    assert data[:4] == b"BPS3" and _document(data)[0] == 3 and b"BPS1" not in data.split(b"snapshots")[0]
    doc = doc3(data)
    assert isinstance(doc["estimators"]["ttt"]["state"]["lab_z_"], np.ndarray)  # native, not a nested blob
    back = state_from_bytes(data, p)
    assert state_to_bytes(back) == data  # the same bytes again: nothing lost or changed on the way
    for method, est in state.estimators.items():
        assert same(est.state_dict(), back.estimators[method].state_dict()), method
    for name in ("windower", "gates", "journal", "snapshots", "pending", "recent", "last_seq", "out_seq"):
        assert same(getattr(state, name), getattr(back, name)), name
    plain = _go_on(p, state_from_bytes(data, p), chunks[22:])
    assert _go_on(p, copy.deepcopy(state), chunks[22:]) == plain  # as if it had never been written
    restored = []
    cur = state_from_bytes(data, p)
    for m in chunks[22:]:  # written and read back after every message, as the worker's table does
        cur, o = p.step(state_from_bytes(state_to_bytes(cur), p), m)
        restored.extend(o)
    assert plain == restored
    assert sum(1 for o in plain if getattr(o, "estimates", None)) >= 6
    assert any(o.estimates["ttt"].sbp_mmhg is not None for o in plain if getattr(o, "estimates", None))


def test_the_format_2_state_reads_and_its_next_write_is_format_3():
    data = (FIXTURES / "state_v2_synthetic.bin").read_bytes()
    facts = json.loads((FIXTURES / "state_v2_synthetic.json").read_text())
    assert data[:4] == b"BPS1" and _document(data)[0] == 2
    p = pipeline(ALL_METHODS)
    state = state_from_bytes(data, p)
    assert (state.last_seq, state.out_seq, state.calibrations) == (facts["last_seq"], facts["out_seq"],
                                                                   facts["calibrations"])
    for method, est in state.estimators.items():  # every estimator's learned state, to the bit
        assert hashlib.sha256(est.to_bytes()).hexdigest() == facts["estimator_sha256"][method], method
    assert state.snapshots and all(b[:4] == b"BPS1" for s in state.snapshots for b in s["estimators"].values())
    assert salvage_counters(data) == {"last_seq": facts["last_seq"], "out_seq": facts["out_seq"]}
    new = state_to_bytes(state)
    assert new[:4] == b"BPS3" and _document(new)[0] == 3 and len(new) < len(data)
    again = state_from_bytes(new, p)
    assert state_to_bytes(again) == new
    later = list(synthetic_chunks(60.0))[facts["last_seq"] + 1:]
    outs = _go_on(p, state, later)
    assert outs == _go_on(p, again, later)  # the format-2 state and its format-3 rewrite go on alike
    assert [o.seq for o in outs if hasattr(o, "seq")][0] == facts["out_seq"] + 1


def test_corrupt_or_truncated_bytes_are_unreadable_and_nothing_else(stepped):
    p, state, _ = stepped
    data = state_to_bytes(state)
    for n in sorted({*range(0, 64), *range(64, len(data), max(1, len(data) // 97))}):
        with pytest.raises(StateError):
            state_from_bytes(data[:n], p)
        salvage_counters(data[:n])  # never raises
    rng = np.random.default_rng(7)
    for _ in range(300):
        broken = bytearray(data)
        for i in rng.integers(4, len(data), size=3):
            broken[i] = int(rng.integers(0, 256))
        try:
            assert isinstance(state_from_bytes(bytes(broken), p), PatientState)  # a flipped sample still reads
        except StateError:
            pass
        salvage_counters(bytes(broken))
    for foreign in (b"", b"BPS", b"BPS2" + data[4:], b"\x00" * 40, None, 42):
        with pytest.raises(StateError):
            state_from_bytes(foreign, p)


def test_unknown_tags_and_mixed_formats_are_refused_and_import_nothing(stepped):
    p, state, _ = stepped
    state.last_seq, state.out_seq = 21, 77
    doc = doc3(state_to_bytes(state))
    before = set(sys.modules)
    for part in ({"O": "filters.no_such_part", "n": 1, "v": {}}, {"O": "os:system", "n": 1, "v": {}},
                 {"D": "bpstream.filters._window:Windower", "v": {}}, {"E": "subprocess", "v": "x"},
                 {"O": "filters.windower", "n": 99, "v": {}},  # newer than this code
                 {"Q": 1}):  # no such node
        broken = bytes3({**doc, "rest": {**doc["rest"], "windower": part}})
        with pytest.raises(StateError):
            state_from_bytes(broken, p)
        assert salvage_counters(broken) == {"last_seq": 21, "out_seq": 77}  # the worker keeps the identities
    assert set(sys.modules) == before
    with pytest.raises(StateError):
        state_from_bytes(bytes3({**doc, "patient": ["windower", 1]}), p)
    for fmt in (2, 1, 4, True, None):  # a format-3 body says format 3, nothing else
        with pytest.raises(StateError):
            state_from_bytes(bytes3({**doc, "format": fmt}), p)
    with pytest.raises(StateError):
        state_from_bytes(pack(doc), p)  # a format-3 document in the old container
    newer = {**doc["estimators"], "ttt": {**doc["estimators"]["ttt"], "n": 2}}  # an estimator newer than this code
    with pytest.raises(StateError):
        state_from_bytes(bytes3({**doc, "estimators": newer}), p)
    # an estimator stored under another tag: that method starts fresh, the rest reads
    est = {**doc["estimators"], "ttt": {**doc["estimators"]["ttt"], "tag": "est.somebody_else"}}
    fresh = state_from_bytes(bytes3({**doc, "estimators": est}), p)
    assert fresh.last_seq == 21 and len(fresh.estimators["ttt"].lab_y_) == 0 and len(state.estimators["ttt"].lab_y_)


def test_the_encoder_chosen_per_type_writes_what_each_value_is(monkeypatch):
    """The encoder of a type is picked once; what it writes still follows the value: a str enum as its value,
    a named tuple as a tuple, a dict subclass as a dict, a tagged dataclass under its tag and its current
    version (read on every write), an untagged class refused every time."""
    import dataclasses
    from typing import NamedTuple

    from bpstream.filters import Reason
    from bpstream.filters import stateful
    from bpstream.filters._stateful import STATE_CLASSES  # to unregister the test class (as test_state_format does)

    class Pair(NamedTuple):
        a: int
        b: float

    class Counts(dict):
        pass

    @dataclasses.dataclass
    class Untagged:
        x: int = 1

    @stateful("test.encoder_cache_part", version=1)
    @dataclasses.dataclass
    class Part:
        x: int = 1
        y: tuple = (1, 2.5)

    try:
        assert _enc(Reason.ABP_DAMPED) == Reason.ABP_DAMPED.value
        assert _enc(Pair(1, 2.0)) == {"T": [1, 2.0]}
        assert _enc(Counts(k=[1])) == {"M": {"k": [1]}}
        assert _enc([Part(), Part(x=3)]) == [{"D": "test.encoder_cache_part", "n": 1, "v": {"x": 1, "y": {"T": [1, 2.5]}}},
                                             {"D": "test.encoder_cache_part", "n": 1, "v": {"x": 3, "y": {"T": [1, 2.5]}}}]
        monkeypatch.setattr(Part, "state_version", 2)
        assert _enc(Part())["n"] == 2
        for _ in range(2):
            with pytest.raises(StateError):
                _enc(Untagged())
    finally:
        STATE_CLASSES.pop("test.encoder_cache_part", None)
