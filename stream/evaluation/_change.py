"""Change tracking: how well a method follows blood pressure away from its last calibration (pure numpy).

For every scored window, ``d = reference - last accepted calibration value`` (per quantity, at the window's
time; the calibration learned at a window counts only from the next window, as the estimate was made first).

* **strata** of |d| (IEEE 1708a-2019 change strata): SBP and MAP ``0-5``, ``5-15``, ``15-30``, ``30+``; DBP
  ``0-5``, ``5-10``, ``10-20``, ``20+`` mmHg; per band n, ME, SD (ddof 1), MAE, and the 90 % interval coverage.
  A band includes its lower bound and excludes its upper one.
* **trend** on windows with |d| >= 5 mmHg (the exclusion zone of four-quadrant concordance): direction
  concordance = share of windows where sign(estimate - calibration) == sign(d) (an estimate equal to the
  calibration is not concordant), Pearson correlation of predicted and true change, n.
* **by_age**: MAE in bins of calibration age ``0-60``, ``60-120``, ``120-240``, ``240+`` s.

Windows where the estimate, the reference or the calibration value is missing are left out of every count.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["STRATA", "AGE_BINS", "strata", "trend", "by_age", "change_block", "format_change_table", "TREND_MIN_MMHG"]

STRATA: dict[str, tuple[tuple[str, float, float], ...]] = {
    "sbp": (("0-5", 0.0, 5.0), ("5-15", 5.0, 15.0), ("15-30", 15.0, 30.0), ("30+", 30.0, math.inf)),
    "map": (("0-5", 0.0, 5.0), ("5-15", 5.0, 15.0), ("15-30", 15.0, 30.0), ("30+", 30.0, math.inf)),
    "dbp": (("0-5", 0.0, 5.0), ("5-10", 5.0, 10.0), ("10-20", 10.0, 20.0), ("20+", 20.0, math.inf)),
}
AGE_BINS: tuple[tuple[str, float, float], ...] = (
    ("0-60", 0.0, 60.0), ("60-120", 60.0, 120.0), ("120-240", 120.0, 240.0), ("240+", 240.0, math.inf))
TREND_MIN_MMHG = 5.0
_Z90 = 1.6448536269514722


def _arr(x: Any) -> np.ndarray:
    return np.asarray(x, dtype=float)


def _stats(err: np.ndarray, inside: np.ndarray | None) -> dict[str, Any]:
    n = int(len(err))
    out: dict[str, Any] = {"n": n, "me": None, "sd": None, "mae": None, "cov90": None}
    if n:
        out["me"] = float(err.mean())
        out["mae"] = float(np.abs(err).mean())
        out["sd"] = float(err.std(ddof=1)) if n > 1 else None
    if inside is not None and len(inside):
        out["cov90"] = float(inside.mean())
    return out


def strata(est: Any, ref: Any, cal: Any, quantity: str, sd: Any = None) -> dict[str, dict[str, Any]]:
    """Metrics per band of |ref - cal| (see the module docstring); ``sd`` gives the coverage."""
    est, ref, cal = _arr(est), _arr(ref), _arr(cal)
    sd = np.full(len(est), np.nan) if sd is None else _arr(sd)
    ok = np.isfinite(est) & np.isfinite(ref) & np.isfinite(cal)
    d = np.abs(ref - cal)
    out = {}
    for band, lo, hi in STRATA[quantity]:
        m = ok & (d >= lo) & (d < hi)
        has_sd = m & np.isfinite(sd)
        inside = np.abs(est[has_sd] - ref[has_sd]) <= _Z90 * sd[has_sd] + 1e-9 if has_sd.any() else None
        out[band] = _stats(est[m] - ref[m], inside)
    return out


def trend(est: Any, ref: Any, cal: Any, min_change_mmhg: float = TREND_MIN_MMHG) -> dict[str, Any]:
    """Direction concordance and change correlation on windows with |ref - cal| >= ``min_change_mmhg``."""
    est, ref, cal = _arr(est), _arr(ref), _arr(cal)
    ok = np.isfinite(est) & np.isfinite(ref) & np.isfinite(cal)
    d_true, d_pred = ref - cal, est - cal
    m = ok & (np.abs(d_true) >= min_change_mmhg)
    n = int(m.sum())
    out: dict[str, Any] = {"n": n, "concordance": None, "corr": None}
    if n:
        out["concordance"] = float(np.mean(np.sign(d_pred[m]) == np.sign(d_true[m])))
    if n > 1 and np.std(d_pred[m]) > 0 and np.std(d_true[m]) > 0:
        out["corr"] = float(np.corrcoef(d_pred[m], d_true[m])[0, 1])
    return out


def by_age(est: Any, ref: Any, age_s: Any) -> dict[str, dict[str, Any]]:
    """MAE per bin of calibration age (s)."""
    est, ref, age = _arr(est), _arr(ref), _arr(age_s)
    ok = np.isfinite(est) & np.isfinite(ref) & np.isfinite(age)
    out = {}
    for name, lo, hi in AGE_BINS:
        m = ok & (age >= lo) & (age < hi)
        out[name] = {"n": int(m.sum()), "mae": float(np.abs(est[m] - ref[m]).mean()) if m.any() else None}
    return out


def change_block(cols: dict[str, list], quantity: str) -> dict[str, Any]:
    """The ``strata``, ``trend`` and ``by_age`` blocks of one method and quantity from score-sheet columns."""
    q = quantity
    est, ref, cal = cols[f"est_{q}"], cols[f"ref_{q}"], cols[f"cal_{q}"]
    return {"strata": strata(est, ref, cal, q, cols[f"sd_{q}"]), "trend": trend(est, ref, cal),
            "by_age": by_age(est, ref, cols["cal_age_s"])}


def format_change_table(methods_doc: dict[str, Any]) -> str:
    """Plain-ASCII change-tracking table from the JSON ``methods`` block: per quantity, per method the MAE
    in each stratum (n in the header), the trend and the 90 % coverage in the moved strata."""
    lines = ["change since the last calibration (|reference - calibration|), MAE in mmHg per stratum;",
             "trend on |change| >= 5 mmHg: direction concordance, correlation; cov90 in the two moved strata"]
    for q in ("sbp", "dbp", "map"):
        bands = [b for b, _, _ in STRATA[q]]
        first = next(iter(methods_doc.values()), {})
        ns = [first.get(q, {}).get("strata", {}).get(b, {}).get("n", 0) for b in bands]
        head = f"{q.upper():<14}" + "".join(f"{b + ' (' + str(n) + ')':>14}" for b, n in zip(bands, ns))
        lines += ["", head + f"{'conc':>7}{'corr':>7}{'cov90 moved':>13}"]
        for method, doc in methods_doc.items():
            st = doc.get(q, {}).get("strata", {})
            tr = doc.get(q, {}).get("trend", {})
            cells = "".join(f"{_f(st.get(b, {}).get('mae')):>14}" for b in bands)
            cov = "/".join(_f(st.get(b, {}).get("cov90"), ".2f") for b in bands[2:])
            lines.append(f"{method[:13]:<14}{cells}{_f(tr.get('concordance'), '.2f'):>7}"
                         f"{_f(tr.get('corr'), '+.2f'):>7}{cov:>13}")
    return "\n".join(lines)


def _f(v: Any, spec: str = ".2f") -> str:
    return "-" if v is None else format(v, spec)
