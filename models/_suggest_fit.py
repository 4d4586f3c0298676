"""The ``calibration_suggested`` change thresholds of ``ttt`` and ``fusion``, fitted on patients the model never saw
(pure numpy).

Each estimator's estimated change since its calibration is replayed under one calibration on held-out records:
``ttt``'s is the population feature-delta map applied to the change of the window's physiological features
(``feat_delta_w @ (f - f_calibration)``, the map of the model that predicted the record, ``RecordPredictions.w``);
``fusion``'s is its smoothed view's change through its fitted map, dead band, gain and age gate (its constants as
fitted on the same records). The step flags a window when the published estimator's change exceeds its threshold for
SBP or DBP for ``after_windows`` consecutive usable windows (``bpstream.stream.core``'s ``calibration_suggested``,
reason ``predicted_change``).

The fit replays ``once`` (the first window at/after 30 s, as ``validate``'s schedule) and takes thresholds
``c * scale`` (``scale``: the 95th percentile of the absolute predicted change per quantity) with the smallest ``c``
on a fixed grid whose false-alarm rate (flagged share of the windows whose SBP moved less than 5 mmHg from the
calibration) is at most ``max_false_alarm``. The grid, the 0.04 and the rule were set before any result of this rule
was seen on an outer fold (README, "calibration_suggested").
"""

from __future__ import annotations

import numpy as np

__all__ = ["fit_suggest", "flag_runs", "SUGGEST_GRID"]

SUGGEST_GRID = tuple(np.round(np.arange(0.25, 4.0001, 0.05), 3))
MAX_FALSE_ALARM = 0.04  # under the target of 0.05, for the spread between patients
FIRST_S = 30.0
N_Q = 2  # SBP, DBP


def flag_runs(change: np.ndarray, threshold: np.ndarray, after_windows: int) -> np.ndarray:
    """Per window (rows of ``change`` (n, 2), in stream order), whether it is flagged: the absolute change beyond
    ``threshold`` (2,) for SBP or DBP on this and the ``after_windows - 1`` windows before it."""
    off = (np.abs(change) > threshold).any(axis=1)
    out = np.zeros(len(off), bool)
    run = 0
    for i, o in enumerate(off):
        run = run + 1 if o else 0
        out[i] = run >= after_windows
    return out


def _ttt_change(r) -> np.ndarray | None:
    """``ttt``'s change since a calibration at each window (n, 2): the predicting model's feature-delta map applied
    to the change of the scaled features (relative to window 0; differences against the anchor are taken later).
    It leaves out ``ttt``'s other term, the population CNN's change shrunk by ``delta_gain``: 0 in weights trained
    without pretraining, not always with it (the shipped weights' DBP gain is 0.8), so there the fitted threshold
    is an approximation for ``ttt`` (not the published estimator)."""
    if r.w is None or r.z is None:
        return None
    w = np.asarray(r.w, np.float64)
    return np.asarray(r.z, np.float64)[:, -w.shape[1]:] @ w[:N_Q].T


def _fusion_change(fusion: dict):
    """``fusion``'s change: the causally smoothed view (``smooth``) through its fitted map, dead band, gain and age
    gate, as ``FusionEstimator.predict_one`` computes it against one calibration (a function of a record and
    its anchor index, giving (n_later, 2))."""
    from bpstream.models._fusion import age_gate, view_change
    from bpstream.models._fusion_fit import smooth

    weights = np.asarray(fusion["weights"], np.float64)
    gain, half = np.asarray(fusion["gain"], np.float64), np.asarray(fusion["gain_age_half_s"], np.float64)
    deadband = np.asarray(fusion["deadband_mmhg"], np.float64)

    def change(r, a: int, later: np.ndarray) -> np.ndarray:
        t = np.asarray(r.t_s, np.float64)
        s = smooth(t, r.view(), float(fusion["tau_s"]))
        dv = s[later] - s[a]
        out = np.stack([view_change(weights[q][None, :], dv, deadband[q:q + 1])[:, 0] for q in range(N_Q)], 1)
        return out * gain[:N_Q] * age_gate((t[later] - t[a])[:, None], half[:N_Q])
    return change


def _replay(records, change) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per record: (predicted change (n, 2), true change (n, 2)) of the windows after its one calibration."""
    out = []
    for r in records:
        t = np.asarray(r.t_s, np.float64)
        after = np.flatnonzero(t >= FIRST_S)
        if len(after) < 2:
            continue
        a, later = after[0], after[1:]
        pred = change(r, a, later)
        if pred is None:
            continue
        true = np.asarray(r.y, np.float64)[later, :N_Q] - np.asarray(r.y, np.float64)[a, :N_Q]
        out.append((pred, true))
    return out


def _fit_threshold(rows, after_windows: int, max_false_alarm: float) -> tuple[list[float] | None, dict]:
    if not rows:
        return None, {"windows": 0}
    pred_all = np.concatenate([p for p, _ in rows])
    true_sbp = np.concatenate([t[:, 0] for _, t in rows])
    still, moved = np.abs(true_sbp) < 5.0, np.abs(true_sbp) >= 15.0
    scale = np.maximum(np.quantile(np.abs(pred_all), 0.95, axis=0), 1e-6)
    fit = {"windows": int(len(true_sbp)), "still": int(still.sum()), "moved": int(moved.sum()),
           "records": len(rows), "scale_mmhg": scale.tolist(), "max_false_alarm": max_false_alarm,
           "after_windows": after_windows}
    for c in SUGGEST_GRID:
        flagged = np.concatenate([flag_runs(p, c * scale, after_windows) for p, _ in rows])
        fa = float(flagged[still].mean()) if still.any() else 0.0
        if fa <= max_false_alarm:
            fit.update({"c": float(c), "false_alarm": fa,
                        "sensitivity": float(flagged[moved].mean()) if moved.any() else None})
            return (c * scale).tolist(), fit
    return None, fit


def fit_suggest(records, fusion: dict | None = None, after_windows: int = 3,
                max_false_alarm: float = MAX_FALSE_ALARM) -> dict:
    """``{"suggest": {"ttt": [sbp, dbp] or None, "fusion": ..., "fit": {...}}}`` from held-out ``RecordPredictions``:
    ``ttt``'s with ``w`` (the feature-delta map of the model that predicted them), ``fusion``'s with its constants
    fitted on the same records (``fusion``; None: no ``fusion`` threshold). None for an estimator: no threshold
    keeps the false alarms at or under ``max_false_alarm`` (the step then uses the interval rule)."""

    def ttt_change(r, a, later):
        f = _ttt_change(r)
        return None if f is None else f[later] - f[a]

    out: dict = {"fit": {}}
    changes = {"ttt": ttt_change}
    if fusion is not None:
        changes["fusion"] = _fusion_change(fusion)
    for name, change in changes.items():
        out[name], out["fit"][name] = _fit_threshold(_replay(records, change), after_windows, max_false_alarm)
    return {"suggest": out}
