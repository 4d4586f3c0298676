"""PatientState <-> bytes, for the workers' faust table and its changelog (no pickle, no import by name).

**Format rule.** Everything in a state is named by a stable *tag* and a *version* declared on its class
(``@stateful("filters.windower", version=1)``, or ``state_tag = "est.ttt"`` on an estimator; the
registry is ``bpstream.filters._stateful``). The bytes never name a module or a class, so moving or
renaming code loses nothing. A part written at an older version is upgraded by the migrations
registered for its tag (``@migrates(tag, from_version)``); a part that cannot be read (unknown tag,
newer version, no migration path, corrupt bytes) makes the whole state unreadable: the worker then
resets that patient with a ``patient_reset`` event, reason ``state_unreadable`` (never dead-letters
its later messages), keeping the sequence counters when they can still be read.

**Format 3** (written): the magic ``b"BPS3"``, then one msgpack document (``_msgpack_tree``: numpy
arrays and scalars as msgpack extensions, dtype string, shape and raw buffer; floats as IEEE doubles)
``{"format": 3, "patient": [tag, version], "estimators": {method: {"tag", "n", "state"}}, "rest":
{field: node}}``. An estimator's ``state`` is its learned state (``state_dict()``, attribute -> node),
loaded back with ``load_state_dict`` after the migrations of its tag; its parameters come from the
pipeline, which rebuilds a fresh state first. A stored estimator whose tag differs from the one the
pipeline runs under that method is dropped (the method starts fresh). Every other field is a tree of
plain values (None, bool, int, float, str, bytes, numpy arrays and scalars, lists, ``{"T": tuple}``,
``{"M": dict}``) and tagged objects (``{"D"|"O": tag, "n": version, "v": attributes}``, enums ``{"E":
tag, "v": value}``): plain-data fields of PatientState need nothing registered; fields the code no
longer has are dropped, new ones keep their defaults. (The journal's estimator snapshots stay
``to_bytes()`` blobs, i.e. ``bpstream.models.pack``, inside that tree.)

**Formats 2 and 1 are still read** (both ``bpstream.models.pack``: magic ``b"BPS1"``, a JSON header,
raw buffers), and the next write is format 3 (read once, rewritten). Format 2 is the same document with
each estimator's state as a ``to_bytes()`` blob. Format 1 (before tags: classes named
``module:qualname``) maps the known paths of that release to tags at version 1 (``_LEGACY_PATHS``).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from bpstream.filters import migrate, state_class, tag_of
from bpstream.models import Estimator, StateError, unpack

from ._msgpack_tree import tree_from_bytes, tree_to_bytes
from ._step import PatientState, Pipeline

__all__ = ["state_to_bytes", "state_from_bytes", "salvage_counters", "StateError"]

_FORMAT = 3
_MAGIC = b"BPS3"  # formats 1 and 2 begin with bpstream.models.pack's b"BPS1"
_SALVAGED = ("last_seq", "out_seq")  # kept across an unreadable state, so identities never go backwards

# format 1 (commit 02a7ee8 and before) named classes by module path: each known path -> its tag (version 1)
_LEGACY_PATHS = {
    "bpstream.filters._window:Windower": "filters.windower",
    "bpstream.filters._resample:CausalResampler": "filters.resampler",
    "bpstream.filters._input_filter:InputFilter": "filters.input_filter",
    "bpstream.filters._input_quality:QualityThresholds": "filters.quality_thresholds",
    "bpstream.filters._label_quality:LabelFilter": "filters.label_filter",
    "bpstream.filters._types:Role": "filters.role",
    "bpstream.filters._types:Reason": "filters.reason",
    "bpstream.filters._types:Chunk": "filters.chunk",
    "bpstream.filters._types:Window": "filters.window",
    "bpstream.filters._types:Reference": "filters.reference",
    "bpstream.stream._gates:Gates": "stream.gates",
    "bpstream.stream._messages:ChunkMessage": "msg.chunk",
    "bpstream.stream._messages:Calibrate": "msg.calibrate",
    "bpstream.stream._messages:Reset": "msg.reset",
    "bpstream.stream._messages:Discharge": "msg.discharge",
    "bpstream.stream._messages:Event": "msg.event",
    "bpstream.stream._messages:EventKind": "msg.event_kind",
    "bpstream.models._base:MeanEstimator": "est.mean",
    "bpstream.models._base:CarryForward": "est.carry_forward",
    "bpstream.models._frozen:FrozenEstimator": "est.frozen",
    "bpstream.models._frozen:OffsetEstimator": "est.offset",
    "bpstream.models._ttt:FrozenEstimator": "est.frozen",
    "bpstream.models._ttt:OffsetEstimator": "est.offset",
    "bpstream.models._ttt:TTTEstimator": "est.ttt",
}


def _tag(obj: Any) -> tuple[str, int]:
    found = tag_of(obj)
    if found is None:
        raise StateError(f"{type(obj).__name__} has no state tag of its own: decorate it with "
                         "@bpstream.filters.stateful(tag, version)")
    return found


def _estimator_tag(est: Estimator) -> tuple[str, int]:
    return tag_of(est) or (f"est.{est.name}", 1)


def _enc(obj: Any) -> Any:
    """One node of the state tree (the encoder of each type is chosen once, on its first sight)."""
    t = type(obj)
    enc = _ENCODERS.get(t)
    if enc is None:
        enc = _ENCODERS[t] = _encoder_for(t)
    return enc(obj)


def _same(obj: Any) -> Any:
    return obj


def _enc_list(obj: list) -> list:
    return [_enc(x) for x in obj]


def _enc_tuple(obj: tuple) -> dict:
    return {"T": [_enc(x) for x in obj]}


def _enc_dict(obj: dict) -> dict:
    if not all(isinstance(k, str) for k in obj):
        raise StateError("state dict keys must be str")
    return {"M": {k: _enc(v) for k, v in obj.items()}}


def _enc_enum(obj: enum.Enum) -> dict:
    return {"E": _tag(obj)[0], "v": obj.value}


def _enc_estimator(obj: Estimator) -> Any:
    raise StateError("estimators inside the state tree must go through to_bytes")


def _enc_object(obj: Any) -> dict:
    tag, version = _tag(obj)  # looked up on every call: a class's tag and version are its own to change
    return {"O": tag, "n": version, "v": {k: _enc(v) for k, v in vars(obj).items()}}


def _encoder_for(t: type) -> Any:
    """The same checks, in the same order, that decide how a value of type ``t`` is written."""
    if t is type(None) or issubclass(t, (bool, int, float, str, bytes, np.ndarray, np.generic)):
        return _same  # (str and int enums are written as their value, as in format 2)
    for base, enc in ((enum.Enum, _enc_enum), (tuple, _enc_tuple), (list, _enc_list), (dict, _enc_dict),
                      (Estimator, _enc_estimator)):
        if issubclass(t, base):
            return enc
    if dataclasses.is_dataclass(t):
        names = tuple(f.name for f in dataclasses.fields(t))

        def enc_dataclass(obj: Any) -> dict:
            tag, version = _tag(obj)
            return {"D": tag, "n": version, "v": {n: _enc(getattr(obj, n)) for n in names}}

        return enc_dataclass
    return _enc_object


_ENCODERS: dict[type, Any] = {}


class _Reader:
    def __init__(self, legacy: bool):
        self.legacy = legacy

    def cls(self, node: dict, key: str) -> tuple[type, str, int]:
        name = node[key]
        if self.legacy:
            name, version = _LEGACY_PATHS.get(name), 1
        else:
            version = node.get("n", 1)
        cls = state_class(name) if isinstance(name, str) else None
        if cls is None:
            raise StateError("the state holds a part this code does not know (unknown tag)")
        return cls, name, version

    def dec(self, node: Any) -> Any:
        if isinstance(node, list):
            return [self.dec(x) for x in node]
        if not isinstance(node, dict):
            return node
        if "T" in node:
            return tuple(self.dec(x) for x in node["T"])
        if "M" in node:
            return {k: self.dec(v) for k, v in node["M"].items()}
        if "E" in node:
            return self.cls(node, "E")[0](node["v"])
        for key in ("D", "O"):
            if key in node:
                cls, tag, version = self.cls(node, key)
                values = migrate(tag, version, {k: self.dec(v) for k, v in node["v"].items()})
                return _build_dataclass(cls, values) if key == "D" else _build_object(cls, values)
        raise StateError("unknown node in patient state")


def _build_dataclass(cls: type, values: dict) -> Any:
    init = {f.name for f in dataclasses.fields(cls) if f.init}
    obj = cls(**{k: v for k, v in values.items() if k in init})
    for k, v in values.items():
        if k not in init:
            object.__setattr__(obj, k, v)
    return obj


def _build_object(cls: type, values: dict) -> Any:
    obj = cls.__new__(cls)
    obj.__dict__.update(values)
    return obj


def state_to_bytes(state: PatientState) -> bytes:
    rest = {f.name: _enc(getattr(state, f.name)) for f in dataclasses.fields(state) if f.name != "estimators"}
    estimators = {}
    for method, est in state.estimators.items():
        tag, version = _estimator_tag(est)
        estimators[method] = {"tag": tag, "n": version, "state": {k: _enc(v) for k, v in est.state_dict().items()}}
    doc = {"format": _FORMAT, "patient": list(_tag(state)), "estimators": estimators, "rest": rest}
    return _MAGIC + tree_to_bytes(doc)


def state_from_bytes(data: bytes, pipeline: Pipeline) -> PatientState:
    """Rebuild a state; methods the pipeline no longer runs are dropped, new ones start fresh.

    Raises StateError (and nothing else) when the bytes cannot be read."""
    try:
        return _read(*_document(data), pipeline)
    except StateError:
        raise
    except Exception as exc:  # a corrupt or incompatible part: unreadable, whatever broke
        raise StateError(f"unreadable patient state ({type(exc).__name__})") from None


def _document(data: bytes) -> tuple[int, dict]:
    """(format, document) of the bytes of any format this code reads."""
    if isinstance(data, (bytes, bytearray, memoryview)) and bytes(data[:4]) == _MAGIC:
        doc, formats = tree_from_bytes(memoryview(data)[4:]), (_FORMAT,)
    else:
        doc, formats = unpack(data), (1, 2)
    if not isinstance(doc, dict):
        raise StateError("not a patient state")
    fmt = 1 if doc.get("format") is None and doc.get("version") == 1 else doc.get("format")
    if fmt not in formats or isinstance(fmt, bool):
        raise StateError("unknown patient state format")
    return fmt, doc


def _read(fmt: int, doc: dict, pipeline: Pipeline) -> PatientState:
    legacy = fmt == 1
    reader = _Reader(legacy)
    state = pipeline.new_state()
    for method, stored in doc["estimators"].items():
        est = state.estimators.get(method)
        if est is None:
            continue
        if legacy:
            tag, version, saved = _LEGACY_PATHS.get(doc["classes"].get(method)), 1, stored
        else:
            tag, version, saved = stored["tag"], stored["n"], stored["state"]
        mine, current = _estimator_tag(est)
        if tag != mine:
            continue  # another estimator under this method name: it starts fresh
        if fmt != _FORMAT and version == current:
            est.load_bytes(saved)
            continue
        values = {k: reader.dec(v) for k, v in saved.items()} if fmt == _FORMAT else unpack(saved)
        est.load_state_dict(values if version == current else migrate(tag, version, values))  # untagged: v1 only
    values = {name: reader.dec(node) for name, node in doc["rest"].items()}
    tag, version = (_tag(state)[0], 1) if legacy else tuple(doc["patient"])
    if tag != _tag(state)[0]:
        raise StateError("not a patient state")
    values = migrate(tag, version, values)
    names = {f.name for f in dataclasses.fields(state)}
    for name, value in values.items():
        if name in names:
            setattr(state, name, value)
    return state


def salvage_counters(data: bytes | None) -> dict[str, int]:
    """The sequence counters of a state that cannot be read as a whole, where they still can be."""
    try:
        rest = _document(data)[1]["rest"]
        return {k: rest[k] for k in _SALVAGED if isinstance(rest.get(k), int) and not isinstance(rest[k], bool)}
    except Exception:  # noqa: BLE001 - nothing to salvage
        return {}
