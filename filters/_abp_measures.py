"""The stateless half of the arterial label filter, measured for a batch of windows at once.

Everything :class:`~bpstream.filters.LabelFilter` computes from a window alone (beat onsets and beat
pressures, the event detectors' filtered signals, pulse pressure and upstroke rate, the PPG and ABP
spectra of the cross-modal check) depends on that window only, so it is computed here for a whole
batch (n_windows, n_samples) with the filtering vectorized over the rows; the per-patient filter then
runs only its stateful half. Row ``i`` of a batch gives the same numbers as a batch of that row alone,
and ``LabelFilter.update`` gives the same label with or without measures handed in.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ._abp_beats import Beats, beats_batch
from ._abp_events import EventMeasures, event_measures, pulsatility_mmhg
from ._abp_onsets import abp_onsets_batch
from ._label_crossmodal import Spectra, crossmodal_spectra

__all__ = ["AbpMeasures", "measure_abp"]


class AbpMeasures(NamedTuple):
    """What the label filter needs of one finite arterial window, before any patient state."""

    beats: Beats
    map_mmhg: float  # area mean over the complete beats (the whole window with fewer than 2 beats)
    pulse_mmhg: float  # median 2-s rolling peak-to-peak
    upstroke_hz: float  # 99th percentile of dP/dt per mmHg of pulse (see ``upstroke_rate_hz``)
    events: EventMeasures
    spectra: Spectra | None  # ABP and PPG spectra for the cross-modal check; None without a usable PPG


def measure_abp(abp: np.ndarray, fs_hz: float, ppg: np.ndarray | None = None) -> list[AbpMeasures | None]:
    """:class:`AbpMeasures` of each row of ``abp`` (n_windows, n_samples, mmHg); ``ppg``: the same
    windows' PPG (same shape) for the cross-modal spectra, or None. A row with non-finite samples, or
    a batch too short to hold a beat, gets None (the label filter rejects such a window first)."""
    x = np.asarray(abp, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"measure_abp: expected (n_windows, n_samples), got shape {x.shape}")
    fs_hz = float(fs_hz)
    n_rows, n = x.shape
    ok = np.isfinite(x).all(axis=1)
    if n < 4 or not fs_hz > 0 or not ok.any():
        return [None] * n_rows
    if not ok.all():
        x = np.where(ok[:, None], x, 0.0)  # keep the batch finite; those rows are dropped below
    onsets = abp_onsets_batch(x, fs_hz)
    events = event_measures(x, fs_hz)
    with np.errstate(all="ignore"):
        pulse = np.median(pulsatility_mmhg(x, fs_hz), axis=1)
        d = np.diff(x, axis=1)
        k = int(0.99 * (d.shape[1] - 1))
        top = np.partition(d, k, axis=1)[:, k]
        upstroke = np.where(pulse > 0, top * fs_hz / pulse, np.nan) if n >= 3 else np.full(n_rows, np.nan)
    spectra: list[Spectra | None] = [None] * n_rows
    if ppg is not None:
        p = np.asarray(ppg, dtype=np.float64)
        if p.shape == x.shape:
            spectra = crossmodal_spectra(x, p, fs_hz)
    all_beats = beats_batch(x, onsets, fs_hz)
    out: list[AbpMeasures | None] = []
    with np.errstate(all="ignore"):
        for i in range(n_rows):
            if not ok[i]:
                out.append(None)
                continue
            beats = all_beats[i]
            if len(beats) >= 2:
                on = beats.onset
                map_w = float(x[i, on[0] : on[-1] + int(round(beats.period_s[-1] * fs_hz))].mean())
            else:
                map_w = float(x[i].mean())
            out.append(AbpMeasures(beats, map_w, float(pulse[i]), float(upstroke[i]), events[i], spectra[i]))
    return out
