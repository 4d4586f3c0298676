"""Label dynamics and the feature-change map, fitted on a held-out block after population training.

Pure: arrays in, small tables out (no files, no clock). ``label_dynamics`` gives the test-time
constants of how a patient's labels drift between calibrations; ``fit_feature_delta`` a ridge map
from the change of a window's features since the last calibration to the change of its pressures.
"""

from __future__ import annotations

import numpy as np

from bpstream.models._net import N_OUT
from bpstream.models._train import TrainArrays, _by_record

__all__ = ["label_dynamics", "fit_feature_delta"]


def label_dynamics(arr: TrainArrays, every_s: float = 60.0, start_s: float = 30.0) -> dict[str, list[float]]:
    """Population statistics of how a patient's label moves between calibrations (label-only, no model).

    Replays each record's labels under ``once`` and ``every:every_s`` schedules and fits:
    * ``level_blend``: alpha in  y_last + alpha * (mean of the patient's labels - y_last)  minimising the
      MAE of later windows (noise in one calibration is averaged out by the patient's other labels);
    * ``sd_base_mmhg2`` and ``sd_slope_mmhg2_per_s``: sd(age)^2 = base + slope * age, fitted so +-1.645 sd
      covers 90 % of the errors in bins of calibration age.
    """
    groups = _by_record(arr)
    alphas = np.linspace(0.0, 0.6, 13)

    def replay(schedule_every: float | None):
        out = []  # (age_s, y_true, y_last, level)
        for g in groups:
            t, y = arr.t_s[g], arr.y[g]
            due, labs, t_last = start_s, [], None
            for i in range(len(t)):
                if labs:
                    out.append((t[i] - t_last, y[i], labs[-1], np.mean(labs, axis=0)))
                if due is not None and t[i] >= due:
                    labs.append(y[i])
                    t_last = t[i]
                    if schedule_every is None:
                        due = None
                    else:
                        due += schedule_every
                        while due <= t[i]:
                            due += schedule_every
        return out

    rows = replay(every_s)
    if not rows:
        return {}
    age = np.array([r[0] for r in rows])
    yt, yl, lv = (np.array([r[k] for r in rows]) for k in (1, 2, 3))
    mae = np.array([np.abs(yt - (yl + a * (lv - yl))).mean(axis=0) for a in alphas])  # (n_alpha, 3)
    blend = alphas[np.argmin(mae, axis=0)]
    rows_once = replay(None)
    age = np.concatenate([age, [r[0] for r in rows_once]])
    yt = np.concatenate([yt, [r[1] for r in rows_once]])
    pred = np.concatenate([yl + blend * (lv - yl), [r[2] for r in rows_once]])
    err = np.abs(yt - pred)
    edges = np.array([0, 10, 20, 40, 60, 90, 120, 180, 240, 400])
    base, slope = [], []
    for k in range(N_OUT):
        xs, qs = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = (age >= lo) & (age < hi)
            if m.sum() >= 20:
                xs.append(age[m].mean())
                qs.append((np.quantile(err[m, k], 0.90) / 1.645) ** 2)
        if len(xs) >= 2:
            b, a = np.polyfit(xs, qs, 1)
            b = max(b, 0.0)
            a = max(float(np.mean(np.array(qs) - b * np.array(xs))), 1.0)
        else:
            a, b = float(np.mean(qs)) if qs else 25.0, 0.0
        base.append(float(a))
        slope.append(float(b))
    return {"level_blend": [float(b) for b in blend], "sd_base_mmhg2": base, "sd_slope_mmhg2_per_s": slope}


def _anchored_pairs(arr: TrainArrays, every_s: float = 60.0, start_s: float = 30.0):
    """(feature difference, label difference, record) for each later window against the calibrations a
    validate-like replay would take (first at ``start_s``, then every ``every_s``): the pairs the
    feature-delta head meets at test time."""
    dfs, dys, recs = [], [], []
    for r, g in enumerate(_by_record(arr)):
        t = arr.t_s[g]
        due, a = start_s, None
        for i in range(len(g)):
            if a is not None:
                dfs.append(arr.feats[g[i]] - arr.feats[g[a]])
                dys.append(arr.y[g[i]] - arr.y[g[a]])
                recs.append(r)
            if t[i] >= due:
                a = i
                due += every_s
                while due <= t[i]:
                    due += every_s
    if not dfs:
        return np.zeros((0, arr.feats.shape[1])), np.zeros((0, N_OUT)), np.zeros(0, int)
    return np.asarray(dfs, np.float64), np.asarray(dys, np.float64), np.asarray(recs)


def _ridge(x: np.ndarray, y: np.ndarray, lam: float) -> np.ndarray:
    return np.linalg.solve(x.T @ x + lam * np.eye(x.shape[1]), x.T @ y).T  # (3, F)


def fit_feature_delta(arr: TrainArrays, seed: int = 0) -> dict[str, list]:
    """Population linear map from the change in physiological features (window - calibration window) to the
    change in SBP/DBP/MAP, ridge-regularised. Ridge strength and a shrinkage gain are chosen by grouped
    leave-one-record-out cross-validation over the training records (MAE, the metric that is reported);
    zero if nothing helps. ``seed`` is kept for the interface (the procedure is deterministic)."""
    dx, dy, rec = _anchored_pairs(arr, every_s=1e9)  # one calibration at 30 s: changes over 0-5 min
    if len(dy) < 50 or len(np.unique(rec)) < 3:
        return {"feat_delta_w": np.zeros((N_OUT, arr.feats.shape[1])).tolist()}
    # leave-one-record-out (records are the unit of generalisation; few of them, so no random splits)
    ids = np.unique(rec)
    fold = np.searchsorted(ids, rec)
    n_splits = len(ids)
    lams, gains = [3.0, 10.0, 30.0, 100.0, 1000.0], np.linspace(0.0, 1.0, 11)
    best = (np.full(N_OUT, np.inf), np.full(N_OUT, 1000.0), np.zeros(N_OUT))
    for lam in lams:
        pred = np.zeros_like(dy)
        for k in range(n_splits):
            tr = fold != k
            pred[~tr] = dx[~tr] @ _ridge(dx[tr], dy[tr], lam).T
        for g in gains:
            mae = np.abs(dy - g * pred).mean(axis=0)
            better = mae < best[0] - 1e-9
            best = (np.where(better, mae, best[0]), np.where(better, lam, best[1]), np.where(better, g, best[2]))
    w = np.stack([best[2][k] * _ridge(dx, dy, best[1][k])[k] for k in range(N_OUT)])
    return {"feat_delta_w": w.tolist(), "feat_delta_lambda": best[1].tolist(), "feat_delta_gain": best[2].tolist()}
