"""Change-tracking PNGs for ``bpstream validate --plot DIR``, per method: a four-quadrant plot (predicted
change estimate - calibration against true change reference - calibration, with the 5 mmHg exclusion zone)
and the absolute error against calibration age."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ._change import TREND_MIN_MMHG
from ._figures import QUANTITIES as _QUANTITIES, figure as _figure, save as _save

__all__ = ["plot_four_quadrant", "plot_error_by_age"]


def plot_four_quadrant(path_png: str | Path, cols: Mapping[str, list], method: str) -> Path:
    fig, axes = _figure(1, 3, (14.0, 4.6))
    for ax, (q, label) in zip(axes[0], _QUANTITIES):
        est, ref, cal = (np.asarray(cols[f"{p}_{q}"], float) for p in ("est", "ref", "cal"))
        ok = np.isfinite(est) & np.isfinite(ref) & np.isfinite(cal)
        dt, dp = ref[ok] - cal[ok], est[ok] - cal[ok]
        out = np.abs(dt) >= TREND_MIN_MMHG
        conc = float(np.mean(np.sign(dp[out]) == np.sign(dt[out]))) if out.any() else float("nan")
        ax.scatter(dt[~out], dp[~out], s=3, alpha=0.25, lw=0, color="grey")
        ax.scatter(dt[out], dp[out], s=4, alpha=0.4, lw=0)
        lim = max(10.0, float(np.nanmax(np.abs(np.concatenate([dt, dp, [0.0]])))) * 1.05)
        ax.plot([-lim, lim], [-lim, lim], color="black", lw=0.8)
        ax.axhline(0, color="black", lw=0.5)
        ax.axvline(0, color="black", lw=0.5)
        ax.axvspan(-TREND_MIN_MMHG, TREND_MIN_MMHG, color="grey", alpha=0.1)
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_title(f"{method}: {label} change (n={int(out.sum())} outside +-5, concordance {conc:.2f})")
        ax.set_xlabel("true change since calibration (mmHg)")
        ax.set_ylabel("predicted change (mmHg)")
        ax.grid(True, alpha=0.3)
    return _save(fig, path_png)


def plot_error_by_age(path_png: str | Path, cols: Mapping[str, list], method: str) -> Path:
    fig, axes = _figure(1, 3, (14.0, 4.6))
    age = np.asarray(cols["cal_age_s"], float)
    for ax, (q, label) in zip(axes[0], _QUANTITIES):
        err = np.abs(np.asarray(cols[f"est_{q}"], float) - np.asarray(cols[f"ref_{q}"], float))
        ok = np.isfinite(err) & np.isfinite(age)
        ax.scatter(age[ok], err[ok], s=3, alpha=0.3, lw=0)
        edges = np.arange(0.0, max(60.0, float(np.nanmax(age[ok])) if ok.any() else 60.0) + 30.0, 30.0)
        mids, maes = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            m = ok & (age >= lo) & (age < hi)
            if m.any():
                mids.append((lo + hi) / 2)
                maes.append(float(err[m].mean()))
        ax.plot(mids, maes, color="black", lw=1.5, marker="o", ms=3, label="MAE per 30 s")
        ax.set_title(f"{method}: {label} |error| vs calibration age")
        ax.set_xlabel("calibration age (s)")
        ax.set_ylabel("|estimate - reference| (mmHg)")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper left", fontsize="small")
    return _save(fig, path_png)
