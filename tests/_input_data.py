"""Shared by the input-quality tests: real-record windows through the project's reader and windower,
the artifact injectors, and small predicates on InputQuality."""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from bpstream.filters import InputQuality, Reason, Windower

_spec = importlib.util.spec_from_file_location("_bp_inject_iq", Path(__file__).with_name("_inject.py"))
inj = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inj)

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "physionet2015"
FS = 125.0


@functools.lru_cache(maxsize=None)
def record_windows(name: str, hop_s: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ecg, ppg, t_start_s) windows of a real record through the project's reader and windower."""
    from bpstream.stream.records._records import iter_chunks, read_record

    if not (DATA / f"{name}.hea").exists():
        pytest.fail(f"shared data missing: {DATA / name}.hea")
    w = Windower(window_s=10.0, hop_s=hop_s, fs_hz=FS)
    out = [win for chunk in iter_chunks(read_record(DATA / name)) for win in w.update(chunk)]
    return np.stack([x.ecg for x in out]), np.stack([x.ppg for x in out]), np.array([x.t_start_s for x in out])


def clean_window(k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    e, p, _ = record_windows("a555l")
    return e[k].astype(np.float64), p[k].astype(np.float64)


def has(q: InputQuality, reason: Reason, i: int = 0) -> bool:
    return reason in q.reasons[i]


def frac_with(q: InputQuality, reason: Reason, rows=slice(None)) -> float:
    idx = np.arange(len(q))[rows]
    return float(np.mean([reason in q.reasons[i] for i in idx]))
