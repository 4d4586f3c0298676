"""Trees of plain values <-> msgpack bytes (``msgspec.msgpack``), the body of patient state format 3.

A tree is None, bool, int (64-bit), float (an IEEE double: NaN, inf and -0.0 come back exactly), str,
bytes, lists and dicts with str keys, with numpy arrays and numpy scalars as leaves. An array is a
msgpack extension (code 1): one byte the length of its dtype string (``dtype.str``, so the byte order is
kept), that string, one byte its number of dimensions, each dimension as an unsigned 64-bit little-endian
integer, then its buffer in C order; a numpy scalar is the same with no dimensions (code 2), and comes
back as the same numpy type. Tuples are written as lists (the state codec marks the ones it keeps with a
``{"T": [...]}`` node). Only numeric, boolean, date, bytes and unicode dtypes are held; object and
structured arrays are refused both ways.

The caller passes only such trees (the state codec builds them; msgspec would write some other types, a set
or a dataclass, its own way and they would come back as plain lists and dicts). Decoding builds nothing but
these values: no class is looked up, nothing imported or called by name.
Bytes that are not such a tree raise ``StateError``, and so does a value that cannot be written.
"""

from __future__ import annotations

import math
import struct
from typing import Any

import msgspec
import numpy as np

from bpstream.models import StateError

__all__ = ["tree_to_bytes", "tree_from_bytes"]

_ARRAY, _SCALAR = 1, 2  # msgpack extension codes
_KINDS = frozenset("biufcmMSU")  # bool, ints, floats, complex, timedelta/datetime64, bytes, unicode
_MAX_DIMS = 32  # numpy's own limit is 64; a state has 2 at most


def _dtype_ok(dtype: np.dtype) -> bool:
    return dtype.kind in _KINDS and not dtype.hasobject and dtype.fields is None and dtype.subdtype is None


def _ext(obj: Any) -> msgspec.msgpack.Ext:
    if isinstance(obj, np.ndarray):
        code = _ARRAY
    elif isinstance(obj, np.generic):
        code, obj = _SCALAR, np.asarray(obj)
    else:
        raise StateError(f"cannot write {type(obj).__name__} in a patient state")
    if not _dtype_ok(obj.dtype):
        raise StateError(f"cannot write a numpy {obj.dtype} value in a patient state")
    dtype = obj.dtype.str.encode("ascii")
    head = struct.pack(f"<B{len(dtype)}sB{obj.ndim}Q", len(dtype), dtype, obj.ndim, *obj.shape)
    return msgspec.msgpack.Ext(code, head + obj.tobytes(order="C"))


def _from_ext(code: int, data: memoryview) -> Any:
    if code not in (_ARRAY, _SCALAR):
        raise StateError(f"unknown extension {code} in a patient state")
    (n,) = struct.unpack_from("<B", data, 0)
    dtype = np.dtype(bytes(data[1 : 1 + n]).decode("ascii"))
    (ndim,) = struct.unpack_from("<B", data, 1 + n)
    if not _dtype_ok(dtype) or ndim > _MAX_DIMS or (code == _SCALAR and ndim != 0):
        raise StateError("a numpy value in the patient state has a dtype or shape this codec does not write")
    shape = struct.unpack_from(f"<{ndim}Q", data, 2 + n)
    raw = data[2 + n + 8 * ndim :]
    count = math.prod(shape)
    if len(raw) != count * dtype.itemsize:
        raise StateError("a numpy value in the patient state has the wrong number of bytes")
    if dtype.itemsize == 0:
        arr = np.zeros(shape, dtype)
    else:
        arr = np.frombuffer(raw, dtype=dtype, count=count).reshape(shape).copy()  # writable, owns its memory
    return arr[()] if code == _SCALAR else arr


_ENCODER = msgspec.msgpack.Encoder(enc_hook=_ext)
_DECODER = msgspec.msgpack.Decoder(ext_hook=_from_ext)


def tree_to_bytes(tree: Any) -> bytes:
    try:
        return _ENCODER.encode(tree)
    except StateError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. an int beyond 64 bits
        raise StateError(f"cannot write the patient state ({exc})") from None


def tree_from_bytes(data: bytes | memoryview) -> Any:
    try:
        return _DECODER.decode(data)
    except StateError:
        raise
    except Exception as exc:  # noqa: BLE001 - corrupt or truncated bytes, whatever broke
        raise StateError(f"corrupt patient state ({type(exc).__name__})") from None
