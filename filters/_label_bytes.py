"""The :class:`~bpstream.filters.LabelFilter`'s own byte format (``to_bytes``/``from_bytes``): a version
header, then the state's scalars and arrays as little-endian float64. Kept apart from the filter's logic."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

__all__ = ["pack_label_state", "unpack_label_state"]

_VERSION = 1


def pack_label_state(f: Any, n_masked: int) -> bytes:
    """The bytes of a LabelFilter's state (``n_masked``: how many event masks it carries)."""
    head = struct.pack("<4i", _VERSION, f.beats_.shape[0], f.refs_.shape[0], n_masked)
    scal = np.array([f.n_beats_, f.n_refs_, f.segment_, f.last_t_start_s_, f.last_t_end_s_], np.float64)
    body = np.concatenate((scal, f.mask_start_s_, f.mask_until_s_, f.beats_.ravel(), f.refs_.ravel()))
    return head + body.astype("<f8").tobytes()


def unpack_label_state(data: bytes, n_masked: int) -> tuple[int, int, dict[str, Any]]:
    """``(buffer_beats, ref_windows, state attributes)`` from :func:`pack_label_state`'s bytes; malformed or
    foreign bytes raise ValueError."""
    try:
        version, nb, nr, nm = struct.unpack_from("<4i", data)
    except (struct.error, TypeError) as e:
        raise ValueError("LabelFilter state: not a state blob") from e
    if version != _VERSION or nm != n_masked or not (0 < nb <= 4096 and 0 < nr <= 4096):
        raise ValueError(f"LabelFilter state version {version} not supported")
    v = np.frombuffer(data, dtype="<f8", offset=16).astype(np.float64)
    if v.shape[0] != 5 + 2 * nm + nb * 6 + nr * 6:
        raise ValueError("LabelFilter state: wrong length")
    i = 5 + 2 * nm
    state = {
        "n_beats_": int(v[0]), "n_refs_": int(v[1]), "segment_": int(v[2]),
        "last_t_start_s_": float(v[3]), "last_t_end_s_": float(v[4]),
        "mask_start_s_": v[5 : 5 + nm].copy(), "mask_until_s_": v[5 + nm : i].copy(),
        "beats_": v[i : i + nb * 6].reshape(nb, 6).copy(),
        "refs_": v[i + nb * 6 : i + nb * 6 + nr * 6].reshape(nr, 6).copy(),
    }
    return nb, nr, state
