"""``fusion``: the carried calibration plus the population model's predicted change since it, the product default.

For one patient and each quantity q (SBP, DBP, MAP):

* the population model's view of every accepted window, ``v_t`` = its calibration-free SBP/DBP/MAP, its CNN
  embedding and the 9 scaled physiological features (heart rates, pulse arrival time, PPG shape...), is
  smoothed causally
  (exponential, time constant ``tau_s``) into ``s_t``;
* at a calibration the label ``y_c`` and the smoothed view ``s_c`` are kept (the newest calibration having q
  is the anchor);
* the predicted change is a linear map of the view's change, ``W (s_t - s_c)`` (``W``: 3 x 44, fitted on
  label pairs of held-out patients; or the frozen prediction's own change), soft-thresholded by
  ``deadband_mmhg`` (small predicted changes are mostly noise);
* the estimate is ``y_c + gain * h(age) * change``, where ``h(age) = age / (age + gain_age_half_s)`` (1 when
  ``gain_age_half_s`` is 0) is the Kalman gain of a true change that grows like a random walk with calibration age
  against a predicted change whose noise does not: shortly after a calibration the predicted change is mostly
  noise, and the carried value is kept;
* the uncertainty grows with calibration age and with the predicted change:
  ``sd^2 = var0 + var_age * age_s + var_change * shrink(...)^2``;
* test-time learning: every further calibration of the patient updates a per-patient gain (a scalar Kalman
  filter on the gain, starting at the population gain with prior variance ``gain_prior_var``), from the
  change since the previous calibration that the model predicted against the change that happened.

Every constant (``tau_s``, ``gain``, ``gain_age_half_s``, ``deadband_mmhg``, the variance terms,
``gain_prior_var``) is fitted on
patients the model never saw (``bpstream.models.fit_fusion``, inner folds of nested cross-validation) and
stored with the population weights under ``constants["fusion"]``. The arterial waveform is never looked at.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpstream.filters import Reason, Reference, Window
from bpstream.models._base import Estimate, Validity
from bpstream.models._frozen import _estimate, _label_vec, _ModelEstimator
from bpstream.models._population import Population

__all__ = ["FusionEstimator", "FUSION_DEFAULTS", "N_VIEW", "age_gate", "gain_update", "shrink", "view_change"]

N_VIEW = 44  # calibration-free SBP, DBP, MAP + the CNN embedding (32) + the 9 scaled features

# used only when a weights file carries no fitted constants (then the estimator is carry-forward with a
# growing interval: gain 0)
FUSION_DEFAULTS: dict[str, Any] = {
    "tau_s": 30.0,
    "weights": None,  # None: the frozen prediction's own change (W = [I, 0])
    "gain": [0.0, 0.0, 0.0],
    "gain_age_half_s": [0.0, 0.0, 0.0],  # 0: the gain does not depend on calibration age
    "deadband_mmhg": [0.0, 0.0, 0.0],
    "var0_mmhg2": [25.0, 9.0, 12.0],
    "var_age_mmhg2_per_s": [0.3, 0.1, 0.15],
    "var_change": [1.0, 1.0, 1.0],
    "gain_prior_var": [0.0, 0.0, 0.0],
    "gain_obs_var_mmhg2": [100.0, 40.0, 50.0],
}


def shrink(x: np.ndarray, deadband: np.ndarray) -> np.ndarray:
    """Soft threshold: 0 inside +-deadband, moved towards 0 by the deadband outside."""
    return np.sign(x) * np.maximum(np.abs(x) - deadband, 0.0)


def age_gate(age_s: np.ndarray, half_s: np.ndarray) -> np.ndarray:
    """``age / (age + half)``: the share of the gain applied at calibration age ``age_s`` (1 where ``half_s`` <= 0)."""
    age_s, half_s = np.maximum(np.asarray(age_s, np.float64), 0.0), np.asarray(half_s, np.float64)
    return np.where(half_s > 0, age_s / (age_s + np.where(half_s > 0, half_s, 1.0)), 1.0)


def gain_update(gain, gain_var, x, d_mmhg, obs_var_mmhg2):
    """One scalar Kalman update of the gain from an observed change ``d = gain * x + noise`` (noise variance
    ``obs_var_mmhg2``): the new ``(gain, gain_var)``. Elementwise; the estimator's per-patient learning and the
    fit's replay of it (``fit_fusion``) both call this."""
    with np.errstate(invalid="ignore", divide="ignore"):
        k = gain_var * x / (x * x * gain_var + obs_var_mmhg2)
    return gain + k * (d_mmhg - gain * x), (1.0 - k * x) * gain_var


def fusion_constants(pop: Population) -> dict[str, np.ndarray | float]:
    c = dict(FUSION_DEFAULTS)
    c.update(pop.constants.get("fusion") or {})
    out = {k: (float(v) if k == "tau_s" else np.asarray(v, np.float64)) for k, v in c.items()
           if k not in ("weights", "fit")}
    w = c.get("weights")
    out["weights"] = np.hstack([np.eye(3), np.zeros((3, N_VIEW - 3))]) if w is None else np.asarray(w, np.float64)
    return out


def view_change(weights: np.ndarray, dv: np.ndarray, deadband: np.ndarray) -> np.ndarray:
    """Predicted change of SBP/DBP/MAP from a change of the view (..., N_VIEW), dead band applied."""
    return shrink(np.asarray(dv) @ weights.T, deadband)


class FusionEstimator(_ModelEstimator):
    """Carried calibration + shrunk population change, per-patient gain (see the module docstring)."""

    name = "fusion"
    state_tag = "est.fusion"

    def __init__(self, population: Population | None = None, seed: int = 0, adapt_gain: bool = True):
        super().__init__(population, seed)
        self.adapt_gain = adapt_gain
        self.s_ = np.full(N_VIEW, np.nan)  # smoothed view
        self.s_t_ = np.nan  # time of its last update
        self.y_c_ = np.full(3, np.nan)  # anchor label per quantity
        self.s_c_ = np.full((3, N_VIEW), np.nan)  # smoothed view at each quantity's anchor
        self.t_c_ = np.full(3, np.nan)  # anchor time
        self.gain_ = np.full(3, np.nan)  # per-patient gain (nan: the population gain)
        self.gain_var_ = np.full(3, np.nan)
        self.n_labels_ = 0

    # -- smoothing -------------------------------------------------------------------------------
    def _smoothed(self, window: Window) -> np.ndarray:
        """The smoothed view including this window (does not change the state)."""
        c = fusion_constants(self.pop)
        z = self.pop.encode(window)
        mu, _ = self.pop.absolute(z)
        p, t = np.concatenate([mu[0], z]).astype(np.float64), float(window.t_end_s)
        if not np.isfinite(self.s_).all() or not np.isfinite(self.s_t_) or c["tau_s"] <= 0:
            return p
        a = 1.0 - np.exp(-max(t - self.s_t_, 0.0) / c["tau_s"])
        return self.s_ + a * (p - self.s_)

    def _advance(self, window: Window) -> np.ndarray:
        s = self._smoothed(window)
        self.s_, self.s_t_ = s, float(window.t_end_s)
        return s

    def _change(self, c: dict, s: np.ndarray) -> np.ndarray:
        dv = s[None, :] - self.s_c_  # (3, N_VIEW): each quantity against its own anchor
        return shrink(np.einsum("qk,qk->q", c["weights"], dv), c["deadband_mmhg"])

    def _gain(self, c: dict) -> np.ndarray:
        return np.where(np.isfinite(self.gain_), self.gain_, c["gain"])

    # -- prediction ------------------------------------------------------------------------------
    def predict_one(self, window: Window) -> Estimate:
        if not np.isfinite(self.y_c_).any():
            return Estimate.empty(Validity.UNCALIBRATED, (Reason.UNCALIBRATED,))
        c = fusion_constants(self.pop)
        s = self._smoothed(window)
        change = self._change(c, s)
        age = np.maximum(float(window.t_end_s) - self.t_c_, 0.0)
        mu = self.y_c_ + self._gain(c) * age_gate(age, c["gain_age_half_s"]) * change
        var = c["var0_mmhg2"] + c["var_age_mmhg2_per_s"] * age + c["var_change"] * change**2
        return _estimate(mu, np.sqrt(var))

    # -- learning --------------------------------------------------------------------------------
    def learn_one(self, window: Window, label: Reference) -> None:
        s = self._advance(window)
        if not self._usable(label):
            return
        c = fusion_constants(self.pop)
        y = _label_vec(label)
        t = float(label.t_s if label.t_s is not None else window.t_end_s)
        have = np.isfinite(y) & np.isfinite(self.y_c_)
        if self.adapt_gain and have.any():
            self._update_gain(c, y, s, t, have)
        ok = np.isfinite(y)
        self.y_c_ = np.where(ok, y, self.y_c_)
        self.s_c_ = np.where(ok[:, None], s[None, :], self.s_c_)
        self.t_c_ = np.where(ok, t, self.t_c_)
        self.n_labels_ += 1

    def _update_gain(self, c: dict, y: np.ndarray, s: np.ndarray, t: float, have: np.ndarray) -> None:
        """Scalar Kalman update of the gain from one observed change: d = gain * h(age) * x + noise."""
        prior_var = c["gain_prior_var"]
        g = self._gain(c)
        pv = np.where(np.isfinite(self.gain_var_), self.gain_var_, prior_var)
        x = self._change(c, s) * age_gate(np.maximum(t - self.t_c_, 0.0), c["gain_age_half_s"])
        d = y - self.y_c_
        new_g, new_pv = gain_update(g, pv, x, d, c["gain_obs_var_mmhg2"])
        upd = have & (prior_var > 0) & np.isfinite(x) & np.isfinite(d)
        self.gain_ = np.where(upd, new_g, self.gain_)
        self.gain_var_ = np.where(upd, new_pv, self.gain_var_)

    def learn_unlabeled(self, window: Window) -> None:
        if fusion_constants(self.pop)["tau_s"] <= 0:
            return  # no smoothing: the view of a window that is neither estimated from nor learned is never read
        self._advance(window)

    def calibration_mmhg(self) -> tuple[float | None, float | None, float | None]:
        return tuple(float(v) if np.isfinite(v) else None for v in self.y_c_)
