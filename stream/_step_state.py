"""Per-patient state <-> bytes for the Kafka tables (no pickle: an allowlist of plain classes).

Objects of allowlisted classes are stored as their attribute dicts, dataclasses by field, enums
by value; estimators by their own ``to_bytes`` (their parameters, such as shared population weights,
come from the pipeline's factories when the state is loaded).
"""

from __future__ import annotations

import dataclasses
import enum
from typing import Any

import numpy as np

from bpstream.filters import CausalResampler, Reason, Reference, Window, Windower
from bpstream.models import Estimator, pack, unpack


__all__ = ["state_to_bytes", "state_from_bytes", "register_state_class"]

_CLASSES: dict[str, type] = {}


def register_state_class(cls: type) -> type:
    """Allow instances of ``cls`` inside a serialized patient state."""
    _CLASSES[cls.__name__] = cls
    return cls


for _cls in (CausalResampler, Windower, Reference, Window):
    register_state_class(_cls)
_ENUMS: dict[str, type[enum.Enum]] = {"Reason": Reason}


def _enc(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, int, float, str, bytes, np.ndarray, np.generic)):
        return obj
    if isinstance(obj, enum.Enum):
        _ENUMS.setdefault(type(obj).__name__, type(obj))
        return {"E": type(obj).__name__, "v": obj.value}
    if isinstance(obj, tuple):
        return {"T": [_enc(x) for x in obj]}
    if isinstance(obj, list):
        return [_enc(x) for x in obj]
    if isinstance(obj, dict):
        return {"M": {str(k): _enc(v) for k, v in obj.items()}}
    if isinstance(obj, Estimator):
        return {"X": obj.to_bytes()}
    name = type(obj).__name__
    if _CLASSES.get(name) is type(obj):
        if dataclasses.is_dataclass(obj):
            return {"D": name, "f": {f.name: _enc(getattr(obj, f.name)) for f in dataclasses.fields(obj)}}
        return {"O": name, "f": {k: _enc(v) for k, v in vars(obj).items()}}
    raise TypeError(f"{name} is not allowed in a patient state")


def _dec(node: Any) -> Any:
    if isinstance(node, list):
        return [_dec(x) for x in node]
    if not isinstance(node, dict):
        return node
    if "E" in node:
        return _ENUMS[node["E"]](node["v"])
    if "T" in node:
        return tuple(_dec(x) for x in node["T"])
    if "M" in node:
        return {k: _dec(v) for k, v in node["M"].items()}
    if "D" in node:
        return _CLASSES[node["D"]](**{k: _dec(v) for k, v in node["f"].items()})
    if "O" in node:
        obj = object.__new__(_CLASSES[node["O"]])
        obj.__dict__.update({k: _dec(v) for k, v in node["f"].items()})
        return obj
    raise ValueError("unknown node in patient state")


def state_to_bytes(state: Any) -> bytes:
    fields = {f.name: getattr(state, f.name) for f in dataclasses.fields(state)}
    estimators = fields.pop("estimators")
    gates = fields.pop("gates")
    tree = {k: _enc(v) for k, v in fields.items()}
    tree["gates"] = _enc(gates.state_dict())
    tree["estimators"] = {m: e.to_bytes() for m, e in estimators.items()}
    return pack(tree)


def state_from_bytes(data: bytes, fresh: Any) -> Any:
    """Load bytes into ``fresh`` (a new state from the same pipeline: its estimators get their state)."""
    tree = unpack(data)
    est_bytes = tree.pop("estimators")
    for m, b in est_bytes.items():
        if m in fresh.estimators:
            fresh.estimators[m].load_bytes(b)
    fresh.gates.load_state_dict(_dec(tree.pop("gates")))
    for k, v in tree.items():
        setattr(fresh, k, _dec(v))
    return fresh
