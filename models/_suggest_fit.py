"""The ``calibration_suggested`` change threshold of ``ttt``, fitted on patients the model never saw (pure numpy).

``ttt``'s change since its calibration is, under one calibration, the population feature-delta map applied to the
change of the window's physiological features (``feat_delta_w @ (f - f_calibration)``). The step flags a window when
that predicted change exceeds ``suggest_change_mmhg`` for SBP or DBP for ``after_windows`` consecutive usable
windows (``bpstream.stream.core``'s ``calibration_suggested``, reason ``predicted_change``).

The fit replays ``once`` (the first window at/after 30 s, as ``validate``'s schedule) on held-out records, each
predicted by the feature-delta map of the model that did not train on it (``RecordPredictions.w``), and takes
thresholds ``c * scale`` (``scale``: the 95th percentile of the absolute predicted change per quantity) with the
smallest ``c`` on a fixed grid whose false-alarm rate (flagged share of the windows whose SBP moved less than 5 mmHg
from the calibration) is at most ``max_false_alarm``. The grid, the 0.04 and the rule were set before any result
of this rule was seen on an outer fold (README, "calibration_suggested").
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


def _replay(records) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per record: (predicted change (n, 2), true change (n, 2)) of the windows after its one calibration."""
    out = []
    for r in records:
        if r.w is None or r.z is None or len(r.t_s) < 2:
            continue
        t = np.asarray(r.t_s, np.float64)
        after = np.flatnonzero(t >= FIRST_S)
        if len(after) < 2:
            continue
        a, later = after[0], after[1:]
        w = np.asarray(r.w, np.float64)
        feats = np.asarray(r.z, np.float64)[:, -w.shape[1]:]
        pred = (feats[later] - feats[a]) @ w[:N_Q].T
        true = np.asarray(r.y, np.float64)[later, :N_Q] - np.asarray(r.y, np.float64)[a, :N_Q]
        out.append((pred, true))
    return out


def fit_suggest(records, after_windows: int = 3, max_false_alarm: float = MAX_FALSE_ALARM) -> dict:
    """``{"suggest_change_mmhg": [sbp, dbp] or None, "suggest_fit": {...}}`` from held-out ``RecordPredictions``
    (with ``w``, the feature-delta map of the model that predicted them). None: no threshold keeps the false
    alarms at or under ``max_false_alarm`` (the step then uses the interval rule)."""
    rows = _replay(records)
    if not rows:
        return {"suggest_change_mmhg": None, "suggest_fit": {"windows": 0}}
    pred_all = np.concatenate([p for p, _ in rows])
    true_sbp = np.concatenate([t[:, 0] for _, t in rows])
    still, moved = np.abs(true_sbp) < 5.0, np.abs(true_sbp) >= 15.0
    scale = np.maximum(np.quantile(np.abs(pred_all), 0.95, axis=0), 1e-6)
    chosen = None
    for c in SUGGEST_GRID:
        flagged = np.concatenate([flag_runs(p, c * scale, after_windows) for p, _ in rows])
        fa = float(flagged[still].mean()) if still.any() else 0.0
        if fa <= max_false_alarm:
            sens = float(flagged[moved].mean()) if moved.any() else None
            chosen = (float(c), fa, sens)
            break
    fit = {"windows": int(len(true_sbp)), "still": int(still.sum()), "moved": int(moved.sum()),
           "records": len(rows), "scale_mmhg": scale.tolist(), "max_false_alarm": max_false_alarm,
           "after_windows": after_windows}
    if chosen is None:
        return {"suggest_change_mmhg": None, "suggest_fit": fit}
    c, fa, sens = chosen
    fit.update({"c": c, "false_alarm": fa, "sensitivity": sens})
    return {"suggest_change_mmhg": (c * scale).tolist(), "suggest_fit": fit}
