"""Fit the ``fusion`` test-time constants on held-out patients (pure numpy: arrays in, dict out; ``frozen``'s fit,
``_frozen_fit``, shares the inputs and ``GRID``).

Input: per record, the population model's calibration-free predictions ``p`` (n, 3) of its usable labelled
windows, their labels ``y`` (n, 3) and window end times ``t_s`` (n,), sorted by time; the records must be
patients the model never saw (inner folds of nested cross-validation). The fit replays both calibration
schedules of ``bpstream validate`` (``once``: the first window at/after 30 s; ``every:60``: then the first at
or after every further 60 s) and picks, on a fixed grid decided before any result was seen:

* the smoothing time constant (shared by the three quantities), per quantity the dead band, the gain (gain 0 is
  carry-forward, so the fit is never worse than carry-forward on the data it is fitted on) and the calibration
  age at which half the gain applies (``gain_age_half_s``; 0 = the same gain at every age);
* the variance terms (non-negative least squares of squared residuals on 1, age, change^2), then a
  temperature that makes +-1.645 sd cover 90 % of the residuals;
* the per-patient gain's prior variance (0 = no test-time adaptation of the gain), by the ``every:60`` error.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from bpstream.models._fusion import N_VIEW, age_gate, gain_update, shrink

__all__ = ["RecordPredictions", "fit_fusion", "smooth", "schedule_anchors", "GRID"]

GRID = {
    "tau_s": (0.0, 10.0, 30.0, 60.0, 120.0),
    "deadband_mmhg": (0.0, 2.0, 5.0, 10.0),
    # 2026-12-07: gain up to 3 and ridge up to 1e5 (were 1.5 and 1e4): the inner fits of 2026-12-02 sat on both
    # edges (a strong ridge and a large gain compensate each other); the calibration-age gate added (see
    # models/_fusion.py). Variants compared on inner folds only (README, ablation)
    "gain": tuple(np.round(np.linspace(0.0, 3.0, 61), 3)),
    "gain_age_half_s": (0.0, 30.0, 60.0, 120.0, 240.0),
    # the change model: None = the frozen prediction's own change; ("features", lam) = ridge on the frozen
    # prediction and the 9 physiological features; ("all", lam) = ridge on the whole view (with the embedding)
    "ridge": (None,) + tuple((part, lam) for part in ("features", "all")
                             for lam in (100.0, 1000.0, 10000.0, 30000.0, 100000.0)),
    "gain_prior_var": (0.0, 0.05, 0.2, 1.0),
    "frozen_shrink": tuple(np.round(np.linspace(0.0, 1.2, 25), 3)),
    # 2026-12-07 (fourth session): ``frozen`` may instead be a ridge on the 9 physiological features (heart rates,
    # pulse arrival time, PPG shape) with these strengths; None = the CNN's prediction shrunk towards the centre.
    # Decided on inner-fold predictions only (README, "frozen")
    "frozen_model": (None, 300.0, 1000.0, 3000.0, 10000.0),
}
FIRST_S, EVERY_S = 30.0, 60.0


@dataclass
class RecordPredictions:
    t_s: np.ndarray  # (n,)
    p: np.ndarray  # (n, 3) calibration-free predictions
    y: np.ndarray  # (n, 3) labels
    z: np.ndarray | None = None  # (n, 41) the model's embedding: CNN (32) + scaled features (9); None: zeros
    group: int = 0  # inner fold: candidate designs are compared by cross-validation across groups
    w: np.ndarray | None = None  # (3, 9) the predicting model's feature-delta map (``calibration_suggested``'s fit)

    def view(self) -> np.ndarray:
        z = np.zeros((len(self.p), N_VIEW - 3)) if self.z is None else np.asarray(self.z, np.float64)
        return np.hstack([np.asarray(self.p, np.float64), z])


def smooth(t_s: np.ndarray, p: np.ndarray, tau_s: float) -> np.ndarray:
    """Causal exponential smoothing with time constant ``tau_s`` (0: none), as ``FusionEstimator`` does."""
    if tau_s <= 0 or len(p) == 0:
        return p.copy()
    s = np.empty_like(p)
    s[0] = p[0]
    for i in range(1, len(p)):
        a = 1.0 - np.exp(-max(t_s[i] - t_s[i - 1], 0.0) / tau_s)
        s[i] = s[i - 1] + a * (p[i] - s[i - 1])
    return s


def schedule_anchors(t_s: np.ndarray, every_s: float | None) -> np.ndarray:
    """Indices of calibration windows: the first at/after 30 s, then (every_s) the first at/after each slot."""
    out, slot = [], FIRST_S
    for i, t in enumerate(t_s):
        if t >= slot:
            out.append(i)
            if every_s is None:
                break
            while slot <= t:
                slot += every_s
    return np.asarray(out, int)


def _pairs(recs: list[RecordPredictions], tau_s: float):
    """(view change X, true change D, age, group) over both schedules, anchor = latest calibration."""
    xs, ds, ages, gs = [], [], [], []
    for r in recs:
        s = smooth(r.t_s, r.view(), tau_s)
        for every in (None, EVERY_S):
            a = schedule_anchors(r.t_s, every)
            if len(a) == 0:
                continue
            idx = np.arange(a[0] + 1, len(r.t_s))
            idx = idx[~np.isin(idx, a)]
            anchor = a[np.searchsorted(a, idx, side="right") - 1]
            xs.append(s[idx] - s[anchor])
            ds.append(r.y[idx] - r.y[anchor])
            ages.append(r.t_s[idx] - r.t_s[anchor])
            gs.append(np.full(len(idx), r.group))
    if not xs:
        return np.zeros((0, N_VIEW)), np.zeros((0, 3)), np.zeros(0), np.zeros(0, int)
    return np.concatenate(xs), np.concatenate(ds), np.concatenate(ages), np.concatenate(gs)


_FEATURE_COLS = np.r_[0:3, N_VIEW - 9:N_VIEW]  # frozen SBP/DBP/MAP and the 9 physiological features


def _weights(x: np.ndarray, d: np.ndarray, k: int, ridge) -> np.ndarray:
    """Row k of W: e_k (the frozen prediction's change) or a ridge fit on standardized view changes."""
    w = np.zeros(N_VIEW)
    if ridge is None:
        w[k] = 1.0
        return w
    part, lam = ridge
    cols = _FEATURE_COLS if part == "features" else np.arange(N_VIEW)
    ok = np.isfinite(d[:, k]) & np.isfinite(x).all(1)
    xs, dk = x[ok][:, cols], d[ok, k]
    scale = np.maximum(xs.std(0), 1e-6)
    z = xs / scale
    coef = np.linalg.solve(z.T @ z + lam * np.eye(len(cols)), z.T @ dk)
    w[cols] = coef / scale
    return w


def _design(x, d, age, k, ridge):
    """Fitted (weights, deadband, age half, gain, mae) of one candidate on pairs (x, d, age), quantity k."""
    w = _weights(x, d, k, ridge)
    raw = x @ w
    best = None
    for db in GRID["deadband_mmhg"]:
        shrunk = shrink(raw, db)
        for half in GRID["gain_age_half_s"]:
            g, mae = _best_gain(shrunk * age_gate(age, half), d[:, k])
            if best is None or mae < best[4]:
                best = (w, db, half, g, mae)
    return best


def _cv_mae(x, d, age, grp, k, ridge) -> float:
    """MAE of a candidate on each group with everything fitted on the other groups (in-sample if one group)."""
    groups = np.unique(grp)
    if len(groups) < 2:
        return _design(x, d, age, k, ridge)[4]
    errs = []
    for h in groups:
        tr, te = grp != h, grp == h
        w, db, half, g, _ = _design(x[tr], d[tr], age[tr], k, ridge)
        e = np.abs(d[te, k] - g * age_gate(age[te], half) * shrink(x[te] @ w, db))
        errs.append(e[np.isfinite(e)])
    return float(np.concatenate(errs).mean())


def _best_gain(x: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """Gain on the grid minimising mean |d - gain * x| (ignoring NaN); (gain, mae)."""
    ok = np.isfinite(x) & np.isfinite(d)
    x, d = x[ok], d[ok]
    if len(d) == 0:
        return 0.0, float("nan")
    gains = np.asarray(GRID["gain"], np.float64)
    maes = np.abs(d[None, :] - gains[:, None] * x[None, :]).mean(1)
    k = int(np.argmin(maes))
    return float(gains[k]), float(maes[k])


def _variance(x: np.ndarray, d: np.ndarray, age: np.ndarray, gain: float, half: float) -> list[float]:
    ok = np.isfinite(x) & np.isfinite(d)
    r = d[ok] - gain * age_gate(age[ok], half) * x[ok]
    a = np.stack([np.ones(ok.sum()), age[ok], x[ok] ** 2], 1)
    coef, _ = nnls(a, r**2)
    coef[0] = max(coef[0], 1.0)
    z = np.abs(r) / np.sqrt(a @ coef)
    temp = float(np.quantile(z, 0.90) / 1.645) ** 2
    return [float(v) for v in coef * temp]


def _every_mae(recs: list[RecordPredictions], c: dict, k: int, prior_var: float) -> float:
    """MAE of quantity k under every:60 with the per-patient gain adapted with ``prior_var``."""
    errs = []
    for r in recs:
        s = smooth(r.t_s, r.view(), c["tau_s"]) @ np.asarray(c["weights"][k], np.float64)
        a = schedule_anchors(r.t_s, EVERY_S)
        if len(a) == 0:
            continue
        g, pv = c["gain"][k], prior_var
        for j, ai in enumerate(a):
            if j > 0 and prior_var > 0:  # observe the change since the previous anchor
                prev = a[j - 1]
                x = float(shrink(s[ai] - s[prev], c["deadband_mmhg"][k])
                          * age_gate(r.t_s[ai] - r.t_s[prev], c["gain_age_half_s"][k]))
                dd = float(r.y[ai, k] - r.y[prev, k])
                if np.isfinite(x) and np.isfinite(dd):
                    g, pv = gain_update(g, pv, x, dd, c["gain_obs_var_mmhg2"][k])
            end = a[j + 1] if j + 1 < len(a) else len(r.t_s)
            idx = np.arange(ai + 1, end)
            x = shrink(s[idx] - s[ai], c["deadband_mmhg"][k]) * age_gate(r.t_s[idx] - r.t_s[ai],
                                                                          c["gain_age_half_s"][k])
            errs.append(np.abs(r.y[idx, k] - r.y[ai, k] - g * x))
    e = np.concatenate(errs) if errs else np.zeros(0)
    e = e[np.isfinite(e)]
    return float(e.mean()) if len(e) else float("nan")


def fit_fusion(recs: list[RecordPredictions]) -> dict:
    """The ``constants["fusion"]`` block, plus a ``fit`` report (inner cross-validated MAE of each choice)."""
    best = None
    for tau in GRID["tau_s"]:
        x, d, age, grp = _pairs(recs, tau)
        if len(d) == 0:
            continue
        cf = np.nanmean(np.abs(d), 0)
        per_q = []
        for k in range(3):
            cv = [(_cv_mae(x, d, age, grp, k, ridge), ridge) for ridge in GRID["ridge"]]
            per_q.append(min(cv, key=lambda c: c[0]))
        score = float(np.mean([m / c for (m, _), c in zip(per_q, cf)]))
        if best is None or score < best[0]:
            best = (score, tau, per_q, x, d, age, cf)
    if best is None:
        raise ValueError("no calibration pairs in the given records")
    score, tau, per_q, x, d, age, cf = best
    designs = [_design(x, d, age, k, per_q[k][1]) for k in range(3)]
    c: dict = {"tau_s": float(tau), "weights": [w.tolist() for w, *_ in designs],
               "gain": [g for _, _, _, g, _ in designs], "deadband_mmhg": [db for _, db, *_ in designs],
               "gain_age_half_s": [half for _, _, half, _, _ in designs]}
    var = [_variance(shrink(x @ w, db), d[:, k], age, g, half) for k, (w, db, half, g, _) in enumerate(designs)]
    c["var0_mmhg2"] = [v[0] for v in var]
    c["var_age_mmhg2_per_s"] = [v[1] for v in var]
    c["var_change"] = [v[2] for v in var]
    c["gain_obs_var_mmhg2"] = [max(v[0], 1.0) for v in var]  # (floored: a perfect fit must not divide by 0)
    priors = []
    for k in range(3):
        maes = [_every_mae(recs, c, k, pv) for pv in GRID["gain_prior_var"]]
        priors.append(float(GRID["gain_prior_var"][int(np.nanargmin(maes))]))
    c["gain_prior_var"] = priors
    c["fit"] = {"pairs": int(len(d)), "records": len(recs), "cv_mae_ratio_to_carry_forward": score,
                "carry_forward_mae": [float(v) for v in cf], "cv_mae": [float(m) for m, _ in per_q],
                "change_model": [None if r is None else list(r) for _, r in per_q]}
    return c
