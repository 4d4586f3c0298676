"""``ttt``: calibration-anchored per-patient test-time training, the product default (``frozen`` and
``offset``, the population model without and with a calibration offset, are in ``_frozen``).

``ttt`` for one patient, after Jo, Lee et al. (ML4H 2024), adapted to calibration-anchored regression:
* prediction: every labelled window in the queue is an anchor; each anchor predicts
  ``y_anchor + delta(window, anchor)`` with an uncertainty that grows with the difference between the two
  windows and the time between them; anchors are combined by inverse variance (recent, similar ones win);
* personal parameters: the feature-delta map (3 x N_FEATURES: mmHg per unit change of heart rate, pulse
  arrival time, PPG amplitude/shape...), started at the population value;
* learning: on each accepted label, a few capped Adam steps on the supervised loss over all label pairs in
  the labelled queue, plus a throttled self-supervised loss on the unlabelled queue (cycle consistency of the
  deltas and smoothness between neighbouring windows), with weighted sampling between the two queues and an
  L2-SP anchor to the population weights;
* safeguards: only windows/labels that passed the filters; roll back to the population weights when the
  adapted model's recent label error exceeds frozen+offset's; freeze adaptation (and drop stale anchors)
  after an offset-step or zeroing event.
Queues hold embeddings (not windows), so the state is a few KB and round-trips exactly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpstream.filters import Reason, Reference, Window
from bpstream.models._base import Estimate, Validity
from bpstream.models._frozen import FrozenEstimator, OffsetEstimator, _estimate, _label_vec, _ModelEstimator
from bpstream.models._population import Population

# FrozenEstimator and OffsetEstimator live in _frozen; patient states of format 1, written before the split,
# name them bpstream.models._ttt:... (stream/core/_state_codec.py maps those paths to their tags)
__all__ = ["FrozenEstimator", "OffsetEstimator", "TTTEstimator"]

_FREEZE_REASONS = (Reason.ABP_OFFSET_STEP, Reason.ABP_ZEROING)


class TTTEstimator(_ModelEstimator):
    """Calibration-anchored per-patient test-time training (see the module docstring)."""

    name = "ttt"
    state_tag = "est.ttt"

    def __init__(
        self,
        population: Population | None = None,
        seed: int = 0,
        max_labels: int = 16,
        max_unlabeled: int = 24,
        unlabeled_every: int = 5,
        ssl_every: int = 15,
        steps_per_label: int = 5,
        lr: float = 0.01,
        l2sp: float = 1.0,
        ssl_weight: float = 0.1,
        p_labeled: float = 0.8,
        rollback_window: int = 4,
        freeze_labels: int = 3,
        combine: str = "latest",
    ):
        super().__init__(population, seed)
        self.max_labels = max_labels
        self.max_unlabeled = max_unlabeled
        self.unlabeled_every = unlabeled_every
        self.ssl_every = ssl_every
        self.steps_per_label = steps_per_label
        self.lr = min(float(lr), 0.05)  # capped
        self.l2sp = l2sp
        self.ssl_weight = ssl_weight
        self.p_labeled = p_labeled
        self.rollback_window = rollback_window
        self.freeze_labels = freeze_labels
        if combine not in ("latest", "precision"):
            raise ValueError("combine must be 'latest' or 'precision'")
        self.combine = combine
        d = 0  # queues start empty; their width is set on first use
        self.lab_z_ = np.zeros((0, d), np.float32)
        self.lab_y_ = np.zeros((0, 3), np.float32)
        self.lab_t_ = np.zeros(0, np.float64)
        self.unl_z_ = np.zeros((0, d), np.float32)
        self.unl_t_ = np.zeros(0, np.float64)
        self.w_: np.ndarray | None = None  # personal delta weight (3, hidden)
        self.adam_m_: np.ndarray | None = None
        self.adam_v_: np.ndarray | None = None
        self.n_updates_ = 0
        self.n_unlabeled_ = 0
        self.err_ttt_: list[float] = []
        self.err_offset_: list[float] = []
        self.offset_sum_ = np.zeros(3)
        self.offset_n_ = np.zeros(3)
        self.rollbacks_ = 0
        self.rolled_back_ = False
        self.frozen_left_ = 0

    # -- prediction ----------------------------------------------------------------------------
    def _weight(self) -> np.ndarray:
        return self.pop.feat_weight if self.w_ is None else self.w_

    def anchor_terms(self, z_t: np.ndarray, z_a: np.ndarray, y_a: np.ndarray, dt_s: np.ndarray):
        """Frozen part of the change anchor -> window (population CNN delta, shrunk), the feature change
        the personal layer multiplies, and the delta head's sd; one row per (window, anchor) pair."""
        h, sd = self.pop.delta_parts(z_t, z_a, np.nan_to_num(y_a), dt_s)
        fixed = (h @ self.pop.delta_weight.T).astype(np.float64) * self.pop.y_std
        k = self.pop.net.emb_dim
        dfeat = (np.atleast_2d(z_t)[:, k:] - np.atleast_2d(z_a)[:, k:]).astype(np.float64)
        return fixed, dfeat, sd

    def _anchored(self, z: np.ndarray, t_s: float, w: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Mean and sd for one embedding: from the latest anchor having each quantity ("latest"), or the
        inverse-variance combination of all anchors ("precision")."""
        lab_z, lab_y, lab_t = self.lab_z_, self.lab_y_, self.lab_t_
        if self.combine == "latest":
            # per quantity, only the newest anchor that has it (older labels still train the personal layer)
            newest = np.isfinite(lab_y) & (np.cumsum(np.isfinite(lab_y)[::-1], axis=0)[::-1] == 1)
            keep = newest.any(1)
            lab_z, lab_t = lab_z[keep], lab_t[keep]
            lab_y = np.where(newest[keep], lab_y[keep], np.nan).astype(np.float32)
        n = len(lab_y)
        fixed, dfeat, sd = self.anchor_terms(np.repeat(z[None], n, 0), lab_z, lab_y, np.abs(t_s - lab_t))
        w = self._weight() if w is None else w
        mu_i = lab_y.astype(np.float64) + fixed + dfeat @ w.T.astype(np.float64)
        if self.combine == "latest" and self.pop.sd_base_mmhg2 is not None:
            # one anchor per quantity; the patient's level (mean of its labels) pulls the anchor by alpha,
            # and the uncertainty grows with the calibration age (population label dynamics)
            ok = np.isfinite(lab_y)
            mu = np.nansum(np.where(ok, mu_i, 0.0), 0)
            y_last = np.nansum(np.where(ok, lab_y, 0.0), 0)
            age = np.nansum(np.where(ok, np.abs(t_s - lab_t)[:, None], 0.0), 0)
            with np.errstate(invalid="ignore"):
                level = np.nanmean(np.where(np.isfinite(self.lab_y_), self.lab_y_, np.nan), 0)
            mu = mu + self.pop.level_blend * (level - y_last)
            var = self.pop.sd_base_mmhg2 + self.pop.sd_slope_mmhg2_per_s * age
            have = ok.any(0)
            return np.where(have, mu, np.nan), np.where(have, np.sqrt(var), np.nan)
        ok = np.isfinite(mu_i)
        prec = np.where(ok, 1.0 / np.maximum(sd, 1e-3) ** 2, 0.0)
        tot = prec.sum(0)
        with np.errstate(invalid="ignore", divide="ignore"):
            wts = prec / tot
            mu = np.where(tot > 0, np.nansum(np.where(ok, wts * mu_i, 0.0), 0), np.nan)
            var = np.where(tot > 0, np.sum(np.where(ok, wts * sd**2, 0.0), 0), np.nan)
        return mu, np.sqrt(var)

    def predict_one(self, window: Window) -> Estimate:
        if len(self.lab_y_) == 0:
            return Estimate.empty(Validity.UNCALIBRATED, (Reason.UNCALIBRATED,))
        z = self.pop.encode(window)
        mu, sd = self._anchored(z, float(window.t_end_s))
        reasons = []
        if self.rolled_back_:
            reasons.append(Reason.MODEL_ROLLED_BACK)
        if self.frozen_left_ > 0:
            reasons.append(Reason.ADAPTATION_FROZEN)
        return _estimate(mu, sd, Validity.VALID, reasons)

    def calibration_mmhg(self) -> tuple[float | None, float | None, float | None]:
        """The newest accepted label per quantity (the anchor each estimate starts from)."""
        out: list[float | None] = []
        for k in range(3):
            col = self.lab_y_[:, k] if len(self.lab_y_) else np.zeros(0)
            ok = np.flatnonzero(np.isfinite(col))
            out.append(float(col[ok[-1]]) if ok.size else None)
        return (out[0], out[1], out[2])

    # -- learning ------------------------------------------------------------------------------
    def learn_one(self, window: Window, label: Reference) -> None:
        if not self._usable(label):
            return
        y = _label_vec(label)
        t = float(label.t_s if label.t_s is not None else window.t_end_s)
        z = self.pop.encode(window)
        mu_abs, _ = self.pop.absolute(z)
        # safeguard bookkeeping: predict-before-learn errors of the adapted model and of frozen+offset
        if len(self.lab_y_) and (self.offset_n_ > 0).any():
            mu, _ = self._anchored(z, t)
            off = mu_abs[0] + self.offset_sum_ / np.maximum(self.offset_n_, 1)
            e_ttt, e_off = np.abs(mu - y)[:2], np.abs(off - y)[:2]
            if np.isfinite(e_ttt).all() and np.isfinite(e_off).all():
                self.err_ttt_ = (self.err_ttt_ + [float(e_ttt.mean())])[-self.rollback_window:]
                self.err_offset_ = (self.err_offset_ + [float(e_off.mean())])[-self.rollback_window:]
        ok = np.isfinite(y)
        self.offset_sum_ = self.offset_sum_ + np.where(ok, y - mu_abs[0], 0.0)
        self.offset_n_ = self.offset_n_ + ok
        if any(r in _FREEZE_REASONS for r in label.reasons):
            # the transducer baseline moved: older anchors no longer share it; stop adapting for a while
            self.lab_z_, self.lab_y_, self.lab_t_ = self.lab_z_[:0], self.lab_y_[:0], self.lab_t_[:0]
            self.frozen_left_ = self.freeze_labels
            self.w_, self.adam_m_, self.adam_v_ = None, None, None
        elif self.frozen_left_ > 0:
            self.frozen_left_ -= 1
        self._push_label(z, y, t)
        if self.frozen_left_ > 0:
            return
        if len(self.err_ttt_) >= self.rollback_window - 1 and np.mean(self.err_ttt_) > np.mean(self.err_offset_):
            self.w_, self.adam_m_, self.adam_v_ = None, None, None
            self.rollbacks_ += 1
            self.rolled_back_ = True
            self.err_ttt_, self.err_offset_ = [], []
            return
        if len(self.lab_y_) >= 2:
            for _ in range(self.steps_per_label):
                self._step(use_ssl=len(self.unl_t_) >= 3)

    def learn_unlabeled(self, window: Window) -> None:
        """Accepted unlabelled window: queue its embedding (throttled) and, throttled, take an SSL step."""
        self.n_unlabeled_ += 1
        if self.n_unlabeled_ % self.unlabeled_every != 0:
            return
        z = self.pop.encode(window)
        self.unl_z_ = np.concatenate([self.unl_z_.reshape(-1, z.size), z[None]])[-self.max_unlabeled:]
        self.unl_t_ = np.append(self.unl_t_, float(window.t_end_s))[-self.max_unlabeled:]
        if (self.n_unlabeled_ % self.ssl_every == 0 and self.frozen_left_ == 0 and len(self.lab_y_) >= 1
                and len(self.unl_t_) >= 3):
            self._step(use_ssl=True, supervised=len(self.lab_y_) >= 2)

    def _push_label(self, z: np.ndarray, y: np.ndarray, t: float) -> None:
        self.lab_z_ = np.concatenate([self.lab_z_.reshape(-1, z.size), z[None]])[-self.max_labels:]
        self.lab_y_ = np.concatenate([self.lab_y_, y[None].astype(np.float32)])[-self.max_labels:]
        self.lab_t_ = np.append(self.lab_t_, t)[-self.max_labels:]

    # -- one capped optimisation step on the personal layer ----------------------------------
    def _step(self, use_ssl: bool, supervised: bool = True) -> None:
        from ._adapt import adapt_step  # torch, on first use

        w0 = self.pop.feat_weight
        w = w0.copy() if self.w_ is None else self.w_
        m = np.zeros_like(w) if self.adam_m_ is None else self.adam_m_
        v = np.zeros_like(w) if self.adam_v_ is None else self.adam_v_
        rng = np.random.default_rng([self.seed, self.n_updates_])
        w, m, v = adapt_step(w, w0, m, v, rng, lab_z=self.lab_z_, lab_y=self.lab_y_, lab_t=self.lab_t_,
                             unl_z=self.unl_z_, unl_t=self.unl_t_, anchor_terms=self.anchor_terms,
                             p_labeled=self.p_labeled, ssl_weight=self.ssl_weight, l2sp=self.l2sp, lr=self.lr,
                             n_updates=self.n_updates_, use_ssl=use_ssl, supervised=supervised)
        self.w_, self.adam_m_, self.adam_v_ = w, m, v
        self.n_updates_ += 1
        self.rolled_back_ = False

    # -- state -----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return super().state_dict()
