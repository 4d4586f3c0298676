"""Shared by the label-quality tests: real records at 125 Hz, synthetic arterial pressure with a PPG-like
image of it, 10-s windows every 2 s, and the artifact injectors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from scipy.signal import butter, resample_poly, sosfilt

from bpstream.filters import LabelFilter, Reference, Window

_spec = importlib.util.spec_from_file_location("_bp_inject", Path(__file__).with_name("_inject.py"))
inj = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(inj)

FS = 125.0
N = 1250
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "physionet2015"


def _record(name: str) -> dict[str, np.ndarray]:
    wfdb = pytest.importorskip("wfdb")
    if not (DATA / f"{name}.hea").exists():
        pytest.skip(f"record {name} not in {DATA}")
    rec = wfdb.rdrecord(str(DATA / name))
    chans = {"ecg": "II", "ppg": "PLETH", "abp": "ABP"}
    return {k: resample_poly(np.nan_to_num(rec.p_signal[:, rec.sig_name.index(c)]), 1, 2) for k, c in chans.items()}


def _ppg_like(abp: np.ndarray, delay_s: float = 0.2) -> np.ndarray:
    """A PPG-like image of the arterial pulse: low-passed, delayed, arbitrary units."""
    sos = butter(2, 4.0, fs=FS, output="sos")
    y = sosfilt(sos, abp - abp[0]) + abp[0]
    d = int(delay_s * FS)
    return np.concatenate((np.full(d, y[0]), y[:-d])) / 50.0


def _windows(sig: dict, t_from_s: float = 0.0, t_to_s: float | None = None, hop_s: float = 2.0):
    n = len(sig["abp"])
    stop = n - N if t_to_s is None else min(n - N, int(t_to_s * FS))
    for i in range(int(t_from_s * FS), stop + 1, int(hop_s * FS)):
        yield Window(
            t_start_s=i / FS,
            t_end_s=(i + N) / FS,
            fs_hz=FS,
            ecg=sig["ecg"][i : i + N].astype(np.float32),
            ppg=sig["ppg"][i : i + N].astype(np.float32),
            abp=sig["abp"][i : i + N].astype(np.float32),
        )


def _run(sig: dict, lf: LabelFilter | None = None, **kw) -> list[tuple[Window, Reference]]:
    lf = lf or LabelFilter(FS)
    return [(w, lf.update(w, **kw)) for w in _windows(sig)]


def _synthetic(duration_s=120.0, sbp=120.0, dbp=70.0, hr=75.0, abp=None) -> dict:
    x = inj.synthetic_abp(duration_s, FS, sbp, dbp, hr, noise_mmhg=0.3) if abp is None else abp
    return {"abp": x, "ppg": _ppg_like(x), "ecg": np.zeros_like(x)}


def _at(out, t_s: float) -> Reference:
    """The label of the first window starting at or after ``t_s``."""
    return next(r for w, r in out if w.t_start_s >= t_s - 1e-9)


def _containing(out, t_s: float) -> list[Reference]:
    return [r for w, r in out if w.t_start_s <= t_s <= w.t_end_s]
