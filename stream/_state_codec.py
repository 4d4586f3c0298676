"""PatientState <-> bytes, for the workers' faust table and its changelog (no pickle).

Estimators serialise themselves (``to_bytes``/``load_bytes``, their own protocol); their parameters
come from the pipeline configuration, so decoding needs the ``Pipeline`` and rebuilds a fresh state
first. Everything else in the state (windower, resamplers, gates, pending labels, the window
history) is a tree of plain values, tuples, enums, dataclasses and bpstream objects; it is written
through ``bpstream.models.pack`` with type tags. Only classes from ``bpstream.*`` modules are rebuilt,
by setting attributes (never by calling code named in the data).
"""

from __future__ import annotations

import dataclasses
import enum
import importlib
from typing import Any

import numpy as np

from bpstream.models import Estimator, StateError, pack, unpack

from ._step import PatientState, Pipeline

__all__ = ["state_to_bytes", "state_from_bytes", "StateError"]

_VERSION = 1


def _classpath(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def _load_class(path: str) -> type:
    module, _, qualname = path.partition(":")
    if not module.startswith("bpstream."):
        raise StateError(f"refusing to rebuild a class outside bpstream: {path!r}")
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not isinstance(obj, type):
        raise StateError(f"{path!r} is not a class")
    return obj


def _enc(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, np.ndarray, np.generic)):
        return obj
    if isinstance(obj, enum.Enum):
        return {"E": _classpath(obj), "v": obj.value}
    if isinstance(obj, tuple):
        return {"T": [_enc(x) for x in obj]}
    if isinstance(obj, list):
        return [_enc(x) for x in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise StateError("state dict keys must be str")
        return {"M": {k: _enc(v) for k, v in obj.items()}}
    if isinstance(obj, Estimator):
        raise StateError("estimators inside the state tree must go through to_bytes")
    if type(obj).__module__.startswith("bpstream."):
        if dataclasses.is_dataclass(obj):
            return {"D": _classpath(obj), "v": {f.name: _enc(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
        return {"O": _classpath(obj), "v": {k: _enc(v) for k, v in vars(obj).items()}}
    raise StateError(f"cannot serialise {type(obj).__name__} in a patient state")


def _dec(node: Any) -> Any:
    if isinstance(node, list):
        return [_dec(x) for x in node]
    if not isinstance(node, dict):
        return node
    if "T" in node:
        return tuple(_dec(x) for x in node["T"])
    if "M" in node:
        return {k: _dec(v) for k, v in node["M"].items()}
    if "E" in node:
        return _load_class(node["E"])(node["v"])
    if "D" in node:
        cls = _load_class(node["D"])
        values = {k: _dec(v) for k, v in node["v"].items()}
        init = {f.name for f in dataclasses.fields(cls) if f.init}
        obj = cls(**{k: v for k, v in values.items() if k in init})
        for k, v in values.items():
            if k not in init:
                object.__setattr__(obj, k, v)
        return obj
    if "O" in node:
        cls = _load_class(node["O"])
        obj = cls.__new__(cls)
        obj.__dict__.update({k: _dec(v) for k, v in node["v"].items()})
        return obj
    raise StateError("unknown node in patient state")


def state_to_bytes(state: PatientState) -> bytes:
    rest = {f.name: _enc(getattr(state, f.name)) for f in dataclasses.fields(state) if f.name != "estimators"}
    return pack({"version": _VERSION, "estimators": {m: e.to_bytes() for m, e in state.estimators.items()},
                 "classes": {m: _classpath(e) for m, e in state.estimators.items()}, "rest": rest})


def state_from_bytes(data: bytes, pipeline: Pipeline) -> PatientState:
    """Rebuild a state; methods the pipeline no longer runs are dropped, new ones start fresh."""
    doc = unpack(data)
    if not isinstance(doc, dict) or doc.get("version") != _VERSION:
        raise StateError("unknown patient state version")
    state = pipeline.new_state()
    for method, blob in doc["estimators"].items():
        est = state.estimators.get(method)
        if est is not None and _classpath(est) == doc["classes"].get(method):
            est.load_bytes(blob)
    names = {f.name for f in dataclasses.fields(state)}
    for name, node in doc["rest"].items():
        if name in names:
            setattr(state, name, _dec(node))
    return state
