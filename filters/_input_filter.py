"""Per-patient streaming input gate: ``InputFilter(fs_hz=125).update(ecg, ppg)``.

Keeps a small causal state: a running PPG beat template (HR-normalized, TEMPLATE_POINTS values)
and a running PPG beat amplitude, both learned only from windows that pass every rule. Windows of
a batch are judged in order, each against the state left by the windows before it, so feeding a
batch or the same windows one by one gives identical results.

State (scikit-learn style: learned attributes end in ``_``; numpy arrays and scalars only, about
0.5 KB): ``template_``, ``n_template_updates_``, ``log_amplitude_``, ``n_mismatch_``,
``n_windows_``. ``state_dict()``/``load_state_dict()`` and ``to_bytes()``/``from_bytes()``
(an ``.npz`` without pickle) serialize it.
"""

from __future__ import annotations

from ._stateful import renames, stateful

import io
import math
from functools import lru_cache

import numpy as np

from ._input_quality import DEFAULT_THRESHOLDS, InputMeasures, InputQuality, QualityThresholds, decide_input, measure_input, usable_except_template
from ._ppg_quality import TEMPLATE_POINTS
from ._beats import zscore_rows

__all__ = ["InputFilter"]

def _z(v: np.ndarray) -> np.ndarray:
    """z-scored copy of a 1-D template (zeros if constant); memoized on its bytes (the running
    template changes only when a window passes, and is z-scored for every window)."""
    v = np.ascontiguousarray(v, dtype=np.float64)
    return _z_of(v.tobytes()).copy()


@lru_cache(maxsize=256)
def _z_of(data: bytes) -> np.ndarray:
    return zscore_rows(np.frombuffer(data, dtype=np.float64)[None, :])[0]


_STATE = ("template_", "n_template_updates_", "log_amplitude_", "n_mismatch_", "n_windows_")


@stateful("filters.input_filter", version=2)  # v2: sampling_rate -> fs_hz
class InputFilter:
    """Stateful input-quality gate for one patient.

    Parameters: ``fs_hz`` (Hz of the windows), ``thresholds``, ``template_alpha`` (weight
    of a new accepted window in the running template and amplitude), ``reseed_after`` (after this
    many consecutive windows that pass everything except the running-template match, the template
    is replaced by the current beat shape: a lasting change of morphology cannot lock a patient out).
    """

    def __init__(
        self,
        fs_hz: float = 125.0,
        thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
        template_alpha: float = 0.1,
        reseed_after: int = 15,
    ):
        self.fs_hz = fs_hz
        self.thresholds = thresholds
        self.template_alpha = template_alpha
        self.reseed_after = reseed_after
        self.reset()

    def reset(self) -> "InputFilter":
        self.template_ = np.zeros(TEMPLATE_POINTS)
        self.n_template_updates_ = 0
        self.log_amplitude_ = float("nan")
        self.n_mismatch_ = 0
        self.n_windows_ = 0
        return self

    def update(self, ecg: object, ppg: object, measures: InputMeasures | None = None) -> InputQuality:
        """Judge one window (1-D arrays) or a batch (n_windows, n_samples), in order; learn from
        the windows that pass. ``measures``: ``measure_input`` of exactly these windows at this
        filter's rate and thresholds, when already computed (e.g. batched across patients)."""
        th = self.thresholds
        m = measures if measures is not None else measure_input(ecg, ppg, self.fs_hz, th)
        n = len(m)
        pq = m.ppg
        own = pq.own_template_corr.tolist()
        tc = list(own)
        ref = [math.nan] * n
        # everything except the template and relative-perfusion rules, decided once for the batch
        base = usable_except_template(m, th).tolist()
        has_beats = np.any(pq.template != 0.0, axis=1).tolist()
        zb = m.ppg_template_z if m.ppg_template_z is not None else zscore_rows(pq.template)  # z-scored mean beats
        # one dot product per row, never a matrix-vector product: BLAS gives a row of a many-row product other
        # last bits than the row alone, and a window's verdict must not depend on the batch it came in
        zt0 = _z(self.template_)
        run_all = [float(row @ zt0) for row in zb]
        amps = pq.amplitude.tolist()
        scales = pq.template.std(axis=1).tolist() if n else []
        alpha = float(self.template_alpha)
        tmin, rel = th.ppg_template_min, th.ppg_rel_amplitude
        zt = None
        for i in range(n):
            seeded = self.n_template_updates_ > 0
            if seeded:
                if zt is not None:  # the template changed earlier in this batch
                    run_all[i] = float(zb[i] @ zt)
                # mean beat correlation = (mean z-beat) . z(template) / points; zb is rescaled, so
                # use the unscaled window template for the exact value
                run = run_all[i] * scales[i] / TEMPLATE_POINTS if has_beats[i] else math.nan
                tc[i] = min(own[i], run) if (math.isfinite(own[i]) and math.isfinite(run)) else math.nan
            if math.isfinite(self.log_amplitude_):
                ref[i] = math.exp(self.log_amplitude_)
            amp = amps[i]
            rel_ok = not (math.isfinite(ref[i]) and amp < rel * ref[i])
            if base[i] and rel_ok and tc[i] >= tmin:
                self.template_ = zb[i].copy() if not seeded else (1.0 - alpha) * self.template_ + alpha * zb[i]
                zt = _z(self.template_)
                self.n_template_updates_ += 1
                la = math.log(max(amp, 1e-12))
                self.log_amplitude_ = la if not math.isfinite(self.log_amplitude_) else (1 - alpha) * self.log_amplitude_ + alpha * la
                self.n_mismatch_ = 0
            elif base[i] and rel_ok and own[i] >= tmin and seeded:
                self.n_mismatch_ += 1
                if self.n_mismatch_ >= int(self.reseed_after):
                    self.template_ = zb[i].copy()
                    zt = _z(self.template_)
                    self.n_template_updates_ = 1
                    self.n_mismatch_ = 0
            self.n_windows_ += 1
        return decide_input(m, th, ppg_tcorr=np.array(tc, dtype=np.float64), ppg_reference_amplitude=np.array(ref, dtype=np.float64))

    # ---- state -------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray | float | int]:
        return {
            "template_": np.asarray(self.template_, dtype=np.float64).copy(),
            "n_template_updates_": int(self.n_template_updates_),
            "log_amplitude_": float(self.log_amplitude_),
            "n_mismatch_": int(self.n_mismatch_),
            "n_windows_": int(self.n_windows_),
        }

    def load_state_dict(self, state: dict) -> "InputFilter":
        t = np.asarray(state["template_"], dtype=np.float64).reshape(-1)
        if t.shape != (TEMPLATE_POINTS,) or not np.all(np.isfinite(t)):
            raise ValueError(f"template_ must hold {TEMPLATE_POINTS} finite values")
        self.template_ = t.copy()
        self.n_template_updates_ = int(state["n_template_updates_"])
        self.log_amplitude_ = float(state["log_amplitude_"])
        self.n_mismatch_ = int(state["n_mismatch_"])
        self.n_windows_ = int(state["n_windows_"])
        return self

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, **{k: np.asarray(v) for k, v in self.state_dict().items()})
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, **params) -> "InputFilter":
        with np.load(io.BytesIO(data), allow_pickle=False) as z:
            state = {k: z[k] for k in _STATE}
        return cls(**params).load_state_dict({k: (v if k == "template_" else v.item()) for k, v in state.items()})


renames("filters.input_filter", from_version=1, old="sampling_rate", new="fs_hz")
