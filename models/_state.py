"""A small, safe, deterministic codec for per-patient state (no pickle).

``pack(obj) -> bytes`` and ``unpack(bytes) -> obj`` for trees of None, bool, int, float (NaN and
inf included, exact round trip), str, bytes, numpy arrays, lists/tuples (decoded as lists) and
dicts with str keys. Layout: 4-byte header length, a JSON header, then the raw array buffers.
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from bpstream.filters import BpstreamError

__all__ = ["pack", "unpack", "StateError"]

_MAGIC = b"BPS1"


class StateError(BpstreamError, ValueError):
    """Bytes that are not a bpstream state, or a value the codec cannot hold."""


def _enc(obj: Any, blobs: list[bytes]) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (int, np.integer)) and not isinstance(obj, bool):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return {"f": repr(float(obj))}
    if isinstance(obj, np.ndarray):
        arr = np.ascontiguousarray(obj)
        if arr.dtype == object:
            raise StateError("object arrays cannot be packed")
        blobs.append(arr.tobytes())
        return {"a": len(blobs) - 1, "dtype": arr.dtype.str, "shape": list(arr.shape)}
    if isinstance(obj, bytes):
        blobs.append(obj)
        return {"b": len(blobs) - 1}
    if isinstance(obj, (list, tuple)):
        return [_enc(x, blobs) for x in obj]
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise StateError("dict keys must be str")
        return {"d": {k: _enc(v, blobs) for k, v in obj.items()}}
    raise StateError(f"cannot pack {type(obj).__name__}")


def _dec(node: Any, blobs: list[memoryview]) -> Any:
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if isinstance(node, list):
        return [_dec(x, blobs) for x in node]
    if "f" in node:
        return float(node["f"])
    if "a" in node:
        arr = np.frombuffer(blobs[node["a"]], dtype=np.dtype(node["dtype"])).reshape(node["shape"])
        return arr.copy()
    if "b" in node:
        return bytes(blobs[node["b"]])
    if "d" in node:
        return {k: _dec(v, blobs) for k, v in node["d"].items()}
    raise StateError("unknown node in state header")


def pack(obj: Any) -> bytes:
    blobs: list[bytes] = []
    header = json.dumps({"tree": _enc(obj, blobs), "sizes": [len(b) for b in blobs]}, separators=(",", ":")).encode()
    return _MAGIC + struct.pack("<I", len(header)) + header + b"".join(blobs)


def unpack(data: bytes) -> Any:
    if not isinstance(data, (bytes, bytearray, memoryview)) or bytes(data[:4]) != _MAGIC:
        raise StateError("not a bpstream state")
    mv = memoryview(bytes(data))
    (n,) = struct.unpack("<I", mv[4:8])
    try:
        header = json.loads(bytes(mv[8 : 8 + n]))
    except ValueError as exc:
        raise StateError(f"corrupt state header: {exc}") from exc
    blobs, pos = [], 8 + n
    for size in header["sizes"]:
        blobs.append(mv[pos : pos + size])
        pos += size
    return _dec(header["tree"], blobs)
