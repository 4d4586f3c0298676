"""PNG plots for ``bpstream validate --plot DIR``: estimates vs reference over time per record,
and a Bland-Altman plot per method.

matplotlib is imported inside the functions and drawn through its Agg canvas directly (no
pyplot, no global backend switch), so importing this module costs nothing and never touches a
display.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np
from numpy.typing import ArrayLike

if TYPE_CHECKING:  # pragma: no cover
    from bpstream.stream.evaluation._report import ScoreSheet

from ._figures import QUANTITIES as _QUANTITIES, figure as _figure, save as _save

__all__ = ["plot_record", "plot_bland_altman", "write_plots"]

def _arr(values: ArrayLike | None, n: int | None = None) -> np.ndarray:
    if values is None:
        return np.full(0 if n is None else n, np.nan)
    return np.asarray([np.nan if v is None else v for v in values], dtype=float)


def plot_record(
    path_png: str | Path,
    t_s: ArrayLike,
    ref: Mapping[str, ArrayLike],
    estimates_by_method: Mapping[str, Mapping[str, ArrayLike]],
    title: str = "",
) -> Path:
    """Write a PNG with SBP, DBP and MAP (one panel each) of every method and the reference over
    time. ``ref`` and each method's estimates map "sbp"/"dbp"/"map" to arrays aligned with
    ``t_s`` (NaN or None where missing; a missing quantity is simply not drawn)."""
    t = _arr(t_s)
    t_min = t / 60.0
    fig, axes = _figure(3, 1, (10.0, 7.5))
    for ax, (q, label) in zip(axes[:, 0], _QUANTITIES):
        if q in ref:
            ax.plot(t_min, _arr(ref[q], t.size), color="black", lw=1.6, label="reference")
        for method, est in estimates_by_method.items():
            if q in est:
                ax.plot(t_min, _arr(est[q], t.size), lw=1.0, marker=".", ms=2, label=method)
        ax.set_ylabel(f"{label} (mmHg)")
        ax.grid(True, alpha=0.3)
    axes[-1, 0].set_xlabel("time (min)")
    axes[0, 0].legend(loc="upper right", fontsize="small", ncol=3)
    if title:
        fig.suptitle(title)
    return _save(fig, path_png)


def plot_bland_altman(
    path_png: str | Path,
    est: Mapping[str, ArrayLike],
    ref: Mapping[str, ArrayLike],
    method: str,
) -> Path:
    """Write a Bland-Altman PNG for one method: per quantity, error (est - ref) against the mean
    of est and ref, with the mean error and the 95 % limits of agreement (ME +- 1.96 SD).
    Windows with a NaN estimate or reference are left out; an empty panel says so."""
    fig, axes = _figure(1, 3, (14.0, 4.6))
    for ax, (q, label) in zip(axes[0], _QUANTITIES):
        e, r = _arr(est.get(q)), _arr(ref.get(q))
        if e.size != r.size:
            raise ValueError(f"{q}: {e.size} estimates but {r.size} references")
        ok = np.isfinite(e) & np.isfinite(r)
        diff, mean = e[ok] - r[ok], (e[ok] + r[ok]) / 2.0
        ax.set_title(f"{method}: {label} (n={diff.size})")
        ax.set_xlabel("mean of estimate and reference (mmHg)")
        ax.set_ylabel("estimate - reference (mmHg)")
        ax.grid(True, alpha=0.3)
        if diff.size == 0:
            ax.text(0.5, 0.5, "no scored windows", ha="center", va="center", transform=ax.transAxes)
            continue
        ax.scatter(mean, diff, s=3, alpha=0.3, lw=0)
        me = float(diff.mean())
        ax.axhline(me, color="black", lw=1.2, label=f"ME {me:+.1f}")
        if diff.size >= 2:
            sd = float(diff.std(ddof=1))
            for sign in (-1.0, 1.0):
                ax.axhline(me + sign * 1.96 * sd, color="tab:red", ls="--", lw=1.0)
            ax.plot([], [], color="tab:red", ls="--", label=f"LoA +-{1.96 * sd:.1f}")
        ax.legend(loc="upper right", fontsize="small")
    return _save(fig, path_png)


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "unnamed"


def write_plots(out_dir: str | Path, sheet: "ScoreSheet") -> list[Path]:
    """All plots of a validation run: ``record_<name>.png`` per record with scored windows and
    ``bland_altman_<method>.png``, ``four_quadrant_<method>.png`` and ``error_by_age_<method>.png`` per method. Returns the written paths."""
    out = Path(out_dir)
    paths = []
    for record in sheet.records:
        t_s, ref, est = sheet.record_series(record)
        if t_s.size:
            paths.append(plot_record(out / f"record_{_safe_name(record)}.png", t_s, ref, est, title=record))
    for method in sheet.methods:
        est_q, ref_q = sheet.method_pairs(method)
        paths.append(plot_bland_altman(out / f"bland_altman_{_safe_name(method)}.png", est_q, ref_q, method))
        from ._plots_change import plot_error_by_age, plot_four_quadrant

        cols = sheet.columns(method)
        paths.append(plot_four_quadrant(out / f"four_quadrant_{_safe_name(method)}.png", cols, method))
        paths.append(plot_error_by_age(out / f"error_by_age_{_safe_name(method)}.png", cols, method))
    return paths
