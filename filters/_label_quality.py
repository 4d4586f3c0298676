"""Label quality for the arterial waveform: a small causal per-patient filter (jSQI on a rolling beat
buffer carried across windows, line-event masks, over-damping against the patient's own reference,
cross-modal checks) that turns each window into a :class:`~bpstream.filters.Reference`.

How consumers read the result:

* ``usable`` False: never learn from it, never score against it (``reasons`` says why).
* ``usable`` True and ``reasons`` empty: a full label (SBP, DBP, MAP).
* ``usable`` True with ``Reason.ABP_DAMPED``: a MAP-only label; ``sbp_mmhg``/``dbp_mmhg`` are None and
  only ``map_mmhg`` may be learned from or scored. Always test each field for None.
"""

from __future__ import annotations

from ._stateful import renames, stateful

from functools import lru_cache

import numpy as np

from ._abp import JSQI_BEAT_TO_BEAT, Beats, jsqi_beat_flags
from ._abp_events import abp_events, is_damped, offset_steps
from ._abp_measures import AbpMeasures, measure_abp
from ._label_bytes import pack_label_state, unpack_label_state
from ._label_crossmodal import CROSSMODAL_THRESHOLDS, correlation_from_spectra, hr_agrees, ppg_abp_correlation
from ._types import Reason, Reference, Window

__all__ = ["LabelFilter", "JSQI_BEAT_TO_BEAT", "EVENT_HOLD_S"]

# masked time after each event (seconds), and masked time before it
_MASKED = (
    Reason.ABP_FLUSH,
    Reason.ABP_ZEROING,
    Reason.ABP_BLOOD_SAMPLING,
    Reason.ABP_OFFSET_STEP,
    Reason.ABP_FLAT,
    Reason.ABP_CLIPPED,
)
EVENT_HOLD_S = {
    Reason.ABP_FLAT: 2.0,
    Reason.ABP_CLIPPED: 0.0,
    Reason.ABP_FLUSH: 5.0,
    Reason.ABP_ZEROING: 5.0,
    Reason.ABP_BLOOD_SAMPLING: 10.0,
    Reason.ABP_OFFSET_STEP: 10.0,
}
_PRE_S = 1.0
_T, _S, _D, _M, _O, _P = range(6)  # beat buffer columns: onset time, SBP, DBP, MAP, onset pressure, period


def _median(v: np.ndarray) -> float:
    """Median of a small 1-D array without np.median's overhead."""
    n = v.shape[0]
    k = n // 2
    if n % 2:
        return float(np.partition(v, k)[k])
    p = np.partition(v, (k - 1, k))
    return float(0.5 * (p[k - 1] + p[k]))


@lru_cache(maxsize=1024)
def _refs_median(rows: bytes, n_cols: int) -> tuple[float, ...]:
    """Column medians of a patient's accepted references (a pure function of their bytes, memoized)."""
    r = np.frombuffer(rows, dtype=np.float64).reshape(-1, n_cols)
    return tuple(float(v) for v in np.median(r, axis=0))


@stateful("filters.label_filter", version=2)  # v2: sampling_rate -> fs_hz
class LabelFilter:
    """Per-patient arterial label filter (river style: ``__init__`` stores parameters, state ends in ``_``).

    ``update(window, ecg_hr_bpm=None, ppg=True) -> Reference``. Causal: only past windows shape the state.
    State (numpy arrays and scalars only, about 2 KB as bytes): the last ``buffer_beats`` beats, a few
    accepted window references spaced >= 10 s apart (the patient's own reference, forgotten after
    ``ref_max_age_s``), the event masks and the stream position. ``to_bytes``/``from_bytes`` round-trip it.
    """

    def __init__(
        self,
        fs_hz: float = 125.0,
        *,
        buffer_beats: int = 32,
        ref_windows: int = 12,
        ref_spacing_s: float = 10.0,
        ref_max_age_s: float = 600.0,
        min_good_fraction: float = 0.8,
        min_good_beats: int = 5,
        gap_s: float = 5.0,
    ):
        self.fs_hz = fs_hz
        self.buffer_beats = buffer_beats
        self.ref_windows = ref_windows
        self.ref_spacing_s = ref_spacing_s
        self.ref_max_age_s = ref_max_age_s
        self.min_good_fraction = min_good_fraction
        self.min_good_beats = min_good_beats
        self.gap_s = gap_s
        self.reset()

    # ------------------------------------------------------------------ state
    def reset(self) -> None:
        self.beats_ = np.full((max(30, int(self.buffer_beats)), 6), np.nan)
        self.n_beats_ = 0
        self.refs_ = np.full((int(self.ref_windows), 6), np.nan)  # t_s, sbp, dbp, map, pp, upstroke
        self.n_refs_ = 0
        self.mask_start_s_ = np.full(len(_MASKED), np.nan)
        self.mask_until_s_ = np.full(len(_MASKED), np.nan)
        self.segment_ = -1
        self.last_t_start_s_ = float("nan")
        self.last_t_end_s_ = float("nan")

    def to_bytes(self) -> bytes:
        return pack_label_state(self, len(_MASKED))

    @classmethod
    def from_bytes(cls, data: bytes, **params) -> "LabelFilter":
        """Rebuild from :meth:`to_bytes`; malformed or foreign bytes raise ValueError."""
        nb, nr, state = unpack_label_state(data, len(_MASKED))
        self = cls(buffer_beats=nb, ref_windows=nr, **params)
        vars(self).update(state)
        return self

    def patient_reference(self, t_s: float) -> tuple[float, float, float, float, float] | None:
        """Median (SBP, DBP, MAP, PP, upstroke rate) of the accepted references of the last
        ``ref_max_age_s``; None with fewer than 3."""
        r = self.refs_[: self.n_refs_]
        r = r[r[:, 0] >= t_s - self.ref_max_age_s]
        if r.shape[0] < 3:
            return None
        # the same references recur window after window: memoize the median on their bytes
        return _refs_median(np.ascontiguousarray(r[:, 1:]).tobytes(), r.shape[1] - 1)

    # ------------------------------------------------------------------ update
    def update(
        self, window: Window, ecg_hr_bpm: float | None = None, ppg=True, measures: AbpMeasures | None = None
    ) -> Reference:
        """Label of one window. ``ppg``: True uses ``window.ppg`` for the PPG-ABP correlation, an array
        uses that array, False/None skips the check (pass False when the PPG failed its own quality).
        ``measures``: this window's :func:`~bpstream.filters.measure_abp` row (with ``window.ppg``), when
        a batch measured it ahead; the label is the same either way."""
        t0, t1 = float(window.t_start_s), float(window.t_end_s)
        fs_hz = float(window.fs_hz) if window.fs_hz and np.isfinite(window.fs_hz) else float(self.fs_hz)
        if window.abp is None:
            return self._ref(None, None, None, False, [Reason.ABP_MISSING], t1)
        if (
            window.segment != self.segment_
            or not t0 >= self.last_t_start_s_
            or t0 - self.last_t_end_s_ > self.gap_s
        ):
            self.n_beats_ = 0
        self.segment_, self.last_t_start_s_, self.last_t_end_s_ = int(window.segment), t0, t1
        x = np.asarray(window.abp, dtype=np.float64).reshape(-1)
        if x.size < 4 or not fs_hz > 0:
            return self._ref(None, None, None, False, [Reason.ABP_TOO_FEW_BEATS], t1)
        if not np.isfinite(x).all():
            return self._ref(None, None, None, False, [Reason.ABP_NAN], t1)
        p = window.ppg if ppg is True else (None if ppg is False or ppg is None else ppg)
        if measures is None:
            pw = None if p is None else np.asarray(p, dtype=np.float64).reshape(1, -1)
            measures = measure_abp(x[None, :], fs_hz, pw if pw is not None and pw.shape[1] == x.size else None)[0]
        elif ppg is not True and p is not None:  # an explicit PPG array: its spectra are not in the measures
            measures = measures._replace(spectra=None)
        with np.errstate(all="ignore"):
            return self._update(x, fs_hz, t0, t1, ecg_hr_bpm, p, window, measures)

    def _update(self, x, fs_hz, t0, t1, ecg_hr_bpm, p, window, m: AbpMeasures) -> Reference:
        pref = self.patient_reference(t1)
        events = abp_events(x, fs_hz, ref_sbp_mmhg=pref[0] if pref else None, measures=m.events)
        for ev in events:
            self._mask(ev.reason, t0 + ev.start_s, t0 + ev.end_s)
        beats = m.beats
        tb = t0 + beats.onset / fs_hz
        prev = self._buffer_before(tb[0] - 0.1) if len(beats) else self.beats_[:0]
        good, flags = jsqi_beat_flags(beats, prev[-1:, [_S, _D, _O, _P]])
        # offset steps over the carried beats and this window's beats
        if len(beats):
            cur = np.column_stack((beats.sbp_mmhg, beats.dbp_mmhg, beats.map_mmhg, tb))
            seq = np.concatenate((prev[-16:, [_S, _D, _M, _T]], cur))
            for k in offset_steps(seq[:, 0], seq[:, 1], seq[:, 2]):
                self._mask(Reason.ABP_OFFSET_STEP, seq[k, 3], seq[min(k + 1, len(seq) - 1), 3])
        self._append(beats, tb)
        active = (self.mask_start_s_ < t1) & (self.mask_until_s_ > t0)
        reasons = [r for r, a in zip(_MASKED, active) if a]
        if reasons:
            return self._ref(None, None, None, False, reasons, t1, beats, good)
        # over-damping: MAP only
        map_w, up = m.map_mmhg, m.upstroke_hz
        if pref and is_damped(m.pulse_mmhg, map_w, up, pref[3], pref[2], pref[4]):
            ok = 30.0 <= map_w <= 200.0
            why = [Reason.ABP_DAMPED] if ok else [Reason.ABP_DAMPED, Reason.ABP_BEATS_IMPLAUSIBLE]
            return self._ref(None, None, map_w, ok, why, t1, beats, good)
        n, n_good = len(beats), int(good.sum())
        why: list[Reason] = []
        if n_good < self.min_good_beats or n_good < self.min_good_fraction * n:
            if n < self.min_good_beats:
                why.append(Reason.ABP_TOO_FEW_BEATS)
            why += [r for r, f in flags.items() if f.any()]
            if not why:
                why.append(Reason.ABP_BEATS_IMPLAUSIBLE)
        if n_good == 0:
            return self._ref(None, None, None, False, why, t1, beats, good)
        g = good
        sbp = _median(beats.sbp_mmhg[g])
        dbp = _median(beats.dbp_mmhg[g])
        mp = _median(beats.map_mmhg[g])
        hr = 60.0 / _median(beats.period_s[g])
        extras = {"pp_mmhg": sbp - dbp}
        if not why:
            if hr_agrees(hr, ecg_hr_bpm) is False:
                why.append(Reason.ABP_HR_ECG_DISAGREE)
            if p is not None:
                c = correlation_from_spectra(m.spectra, hr) if m.spectra is not None else ppg_abp_correlation(
                    p, x, fs_hz, hr_bpm=hr)
                if np.isfinite(c):  # a PPG with gaps or no variance is the input filter's business
                    extras["ppg_corr"] = c
                    if c < CROSSMODAL_THRESHOLDS["min_corr"]:
                        why.append(Reason.ABP_PPG_DISAGREE)
        if not why:
            self._push_ref(t1, sbp, dbp, mp, up)
        return self._ref(sbp, dbp, mp, not why, why, t1, beats, good, hr, extras)

    # ------------------------------------------------------------------ helpers
    def _buffer_before(self, t_s: float) -> np.ndarray:
        b = self.beats_[: self.n_beats_]
        return b[b[:, _T] < t_s]

    def _append(self, beats: Beats, tb: np.ndarray) -> None:
        if not len(beats):
            return
        last = self.beats_[self.n_beats_ - 1, _T] if self.n_beats_ else -np.inf
        new = tb > last + 0.1
        if not new.any():
            return
        cols = (tb, beats.sbp_mmhg, beats.dbp_mmhg, beats.map_mmhg, beats.onset_mmhg, beats.period_s)
        rows = np.column_stack(cols)[new]
        allb = np.concatenate((self.beats_[: self.n_beats_], rows))[-self.beats_.shape[0] :]
        self.beats_[:] = np.nan
        self.beats_[: allb.shape[0]] = allb
        self.n_beats_ = allb.shape[0]

    def _mask(self, reason: Reason, start_s: float, end_s: float) -> None:
        i = _MASKED.index(reason)
        a, b = start_s - _PRE_S, end_s + EVENT_HOLD_S[reason]
        cur_a, cur_b = self.mask_start_s_[i], self.mask_until_s_[i]
        if np.isfinite(cur_b) and cur_b >= a:  # overlapping: extend
            a, b = min(a, cur_a), max(b, cur_b)
        self.mask_start_s_[i], self.mask_until_s_[i] = a, b
        if reason in (Reason.ABP_ZEROING, Reason.ABP_OFFSET_STEP):
            self.n_refs_ = 0  # a new baseline: the old reference no longer applies

    def _push_ref(self, t_s: float, sbp: float, dbp: float, mp: float, up: float) -> None:
        if self.n_refs_ and t_s - self.refs_[self.n_refs_ - 1, 0] < self.ref_spacing_s:
            return
        row = np.array([[t_s, sbp, dbp, mp, sbp - dbp, up]])
        allr = np.concatenate((self.refs_[: self.n_refs_], row))[-self.refs_.shape[0] :]
        self.refs_[:] = np.nan
        self.refs_[: allr.shape[0]] = allr
        self.n_refs_ = allr.shape[0]

    @staticmethod
    def _ref(sbp, dbp, mp, usable, reasons, t_s, beats=None, good=None, hr=None, extras=None) -> Reference:
        n = len(beats) if beats is not None else 0
        frac = float(good.sum() / n) if n else 0.0
        return Reference(
            sbp_mmhg=sbp,
            dbp_mmhg=dbp,
            map_mmhg=mp,
            usable=bool(usable),
            reasons=tuple(dict.fromkeys(reasons)),
            good_beat_fraction=frac,
            n_beats=n,
            hr_bpm=hr,
            t_s=t_s,
            source="arterial",
            extras=extras or {},
        )


renames("filters.label_filter", from_version=1, old="sampling_rate", new="fs_hz")
