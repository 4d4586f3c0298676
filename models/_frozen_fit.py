"""Fit ``frozen``'s calibration-free map on held-out patients (pure numpy: ``RecordPredictions`` in, dict out).

Per quantity, the candidates of ``GRID["frozen_model"]``: the CNN's prediction shrunk towards the training centre
(shrinkage on ``GRID["frozen_shrink"]``) or a ridge on the 9 physiological features at a fixed strength; the one
with the lowest MAE by cross-validation across the records' groups (inner folds) is refitted on all of them, with a
constant 90 % interval from its cross-validated residuals. ``offset`` (``frozen`` plus the calibration residual)
gets its constant interval from the same cross-validated predictions.
"""

from __future__ import annotations

import numpy as np

from bpstream.models._features import N_FEATURES
from bpstream.models._frozen import frozen_map
from bpstream.models._fusion_fit import GRID, RecordPredictions, schedule_anchors

__all__ = ["fit_frozen"]


def _frozen_design(p: np.ndarray, f: np.ndarray, y: np.ndarray, center: float, model) -> tuple:
    """One quantity's calibration-free map ``mu = c0 + shrink * (p - c0) + (f - f_mean) @ coef``, fitted on
    (p, f, y): ``model`` None = shrinkage of the CNN's prediction towards ``center`` (grid); a number = ridge of
    that strength on the standardized features (no shrinkage). Returns (c0, shrink, coef, f_mean)."""
    zeros = np.zeros(f.shape[1])
    if model is None:
        maes = [np.mean(np.abs(y - center - g * (p - center))) for g in GRID["frozen_shrink"]]
        return float(center), float(GRID["frozen_shrink"][int(np.argmin(maes))]), zeros, zeros
    f_mean, f_sd = f.mean(0), np.maximum(f.std(0), 1e-6)
    zf = (f - f_mean) / f_sd
    y_mean = float(y.mean())
    coef = np.linalg.solve(zf.T @ zf + float(model) * np.eye(f.shape[1]), zf.T @ (y - y_mean)) / f_sd
    return y_mean, 0.0, coef, f_mean


def fit_frozen(recs: list[RecordPredictions], center: np.ndarray) -> dict:
    """``frozen``'s map per quantity (see ``_frozen_design``), the candidate chosen by cross-validation across
    the records' groups (inner folds; in-sample with one group), and its constant 90 % sd from the chosen
    candidate's cross-validated residuals. ``frozen_fit`` reports, per quantity, that cross-validated MAE over
    the one of the constant ``center`` (the training median, ``validate``'s ``mean``), and the model chosen."""
    p = np.concatenate([r.p for r in recs])
    y = np.concatenate([r.y for r in recs])
    f = np.concatenate([r.view()[:, -N_FEATURES:] for r in recs])
    grp = np.concatenate([np.full(len(r.p), r.group) for r in recs])
    groups = np.unique(grp)
    out: dict = {"abs_shrink": [], "abs_center_mmhg": [], "abs_feature_coef": [], "abs_feature_mean": [],
                 "abs_sd_mmhg": []}
    ratio, chosen = [], []
    pred_cv = np.full(y.shape, np.nan)  # the chosen candidates' cross-validated predictions (``offset``'s sd)
    for k in range(3):
        ok = np.isfinite(p[:, k]) & np.isfinite(y[:, k]) & np.isfinite(f).all(1)
        best = None
        for model in GRID["frozen_model"]:
            pred = np.full(len(y), np.nan)
            for h in (groups if len(groups) > 1 else [None]):
                tr = ok & (grp != h) if h is not None else ok
                te = ok & (grp == h) if h is not None else ok
                if not tr.any() or not te.any():
                    continue
                pred[te] = frozen_map(p[te, k], f[te], *_frozen_design(p[tr, k], f[tr], y[tr, k], float(center[k]), model))
            r, b = (y[ok, k] - pred[ok]), (y[ok, k] - center[k])
            if best is None or np.abs(r).mean() < best[1]:
                best = (model, float(np.abs(r).mean()), r, float(np.abs(b).mean()), pred)
        model, mae, r, base_mae, pred_cv[:, k] = best
        c0, g, coef, f_mean = _frozen_design(p[ok, k], f[ok], y[ok, k], float(center[k]), model)
        out["abs_center_mmhg"].append(c0)
        out["abs_shrink"].append(g)
        out["abs_feature_coef"].append([float(v) for v in coef])
        out["abs_feature_mean"].append([float(v) for v in f_mean])
        out["abs_sd_mmhg"].append(float(np.quantile(np.abs(r), 0.90) / 1.645))
        ratio.append(mae / base_mae)
        chosen.append("shrink" if model is None else f"features_ridge_{model:g}")
    out["frozen_fit"] = {"mae_ratio_to_center": ratio, "model": chosen,
                         "validation": "cross-validated across groups" if len(groups) > 1 else "in-sample"}
    out.update(_offset_sd(recs, pred_cv))
    return out


def _offset_sd(recs: list[RecordPredictions], pred: np.ndarray) -> dict:
    """``offset``'s constant 1-sigma per quantity: the 90 % quantile of |true change - change of ``frozen``'s
    (cross-validated) prediction| since the ``once`` calibration (``validate``'s first window at/after 30 s),
    over 1.645. Nothing when no record has a window after its calibration."""
    res, start = [], 0
    for r in recs:
        n = len(r.p)
        a = schedule_anchors(r.t_s, None)
        if len(a) and a[0] + 1 < n:
            y, q = np.asarray(r.y, np.float64), pred[start:start + n]
            res.append((y[a[0] + 1:] - y[a[0]]) - (q[a[0] + 1:] - q[a[0]]))
        start += n
    if not res:
        return {}
    e = np.abs(np.concatenate(res))
    return {"offset_sd_mmhg": [float(np.nanquantile(e[:, k], 0.90) / 1.645) for k in range(3)]}
