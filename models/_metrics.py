"""Accuracy metrics for blood-pressure estimates against a reference (pure numpy).

Conventions (stated once, used everywhere):

* error = estimate - reference, in mmHg; NaN in either array means "not scored" for that side:
  a NaN reference drops the window, a NaN estimate (the method abstained or was rejected) is
  counted in ``n_ref`` but not in ``n``, so abstaining is visible and never improves silently.
* ``sd`` is the sample standard deviation of the error (``ddof=1``), as in AAMI/ISO 81060-2;
  it is None for fewer than two errors.
* ``within5/10/15`` are fractions (0..1) of windows with ``|error| <= 5/10/15`` mmHg, the bound
  included (a tolerance of 1e-9 mmHg absorbs float noise such as 128.3 - 113.3 > 15).
* Grade and pass bounds are inclusive, with a 1e-9 tolerance for float noise (an average of
  0.85 and 0.85 may come out as 0.8499999999999999).
* BHS grade (O'Brien 1993): A if >= 60 %, 85 %, 95 % within 5/10/15; B 50/75/90; C 40/65/85; else D.
* IEEE 1708 grade from the MAE: <= 5 A, <= 6 B, <= 7 C, else D.
* AAMI pass: ``|ME| <= 5`` and ``SD <= 8`` mmHg (the error criterion only; the standard's subject
  count and cuff protocol are not checked here).
* ``coverage90``: fraction of references inside ``est +- 1.645 * sd_est``, over the scored windows
  that carry a finite ``sd_est``; None when the method gives no uncertainty.
* Per-record average: the mean of each metric over the records with at least one scored window
  (metrics that are None for a record, e.g. its SD from one window, are left out of that mean);
  its grades are computed from the averaged values.

Nothing here raises on empty or all-NaN input: counts are 0 and every value is None.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, fields
from typing import Any, Sequence

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "Grade",
    "ErrorStats",
    "QuantityMetrics",
    "score",
    "error_stats",
    "bhs_grade",
    "ieee1708_grade",
    "aami_pass",
    "Z90",
]

Z90 = 1.6448536269514722  # two-sided 90 % Gaussian quantile
_TOL_MMHG = 1e-9  # float noise on an error in mmHg
_TOL = 1e-9  # float noise on a fraction or an averaged metric at a grade bound
_BHS_LIMITS = (("A", 0.60, 0.85, 0.95), ("B", 0.50, 0.75, 0.90), ("C", 0.40, 0.65, 0.85))
_IEEE_LIMITS = (("A", 5.0), ("B", 6.0), ("C", 7.0))


class Grade(str, enum.Enum):
    """A letter grade (BHS or IEEE 1708)."""

    A = "A"
    B = "B"
    C = "C"
    D = "D"


def bhs_grade(within5: float | None, within10: float | None, within15: float | None) -> Grade | None:
    """British Hypertension Society grade from the three cumulative fractions (0..1), bounds inclusive."""
    if within5 is None or within10 is None or within15 is None:
        return None
    for letter, w5, w10, w15 in _BHS_LIMITS:
        if within5 >= w5 - _TOL and within10 >= w10 - _TOL and within15 >= w15 - _TOL:
            return Grade(letter)
    return Grade.D


def ieee1708_grade(mae: float | None) -> Grade | None:
    """IEEE 1708 grade from the mean absolute error in mmHg, bounds inclusive."""
    if mae is None:
        return None
    for letter, limit in _IEEE_LIMITS:
        if mae <= limit + _TOL:
            return Grade(letter)
    return Grade.D


def aami_pass(me: float | None, sd: float | None) -> bool | None:
    """AAMI/ISO 81060-2 error criterion: |ME| <= 5 mmHg and SD <= 8 mmHg; None if undefined."""
    if me is None or sd is None:
        return None
    return bool(abs(me) <= 5.0 + _TOL and sd <= 8.0 + _TOL)


@dataclass(frozen=True)
class ErrorStats:
    """Error statistics of one quantity over a set of windows (values None when undefined)."""

    n: int = 0
    me: float | None = None
    sd: float | None = None
    mae: float | None = None
    rmse: float | None = None
    within5: float | None = None
    within10: float | None = None
    within15: float | None = None
    coverage90: float | None = None
    bhs: Grade | None = None
    ieee1708: Grade | None = None
    aami_pass: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: plain floats/ints/bools/str, None for undefined (never NaN)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            out[f.name] = _jsonable(getattr(self, f.name))
        return out


@dataclass(frozen=True)
class RecordAverage(ErrorStats):
    """Mean of per-record metrics; ``records`` is how many records had a scored window."""

    records: int = 0


@dataclass(frozen=True)
class QuantityMetrics(ErrorStats):
    """Pooled metrics of one quantity, plus counts and the per-record average.

    ``n_ref``: windows with a reference; ``n``: of those, windows with an estimate;
    ``n_coverage``: of those, windows with a finite uncertainty (the base of ``coverage90``).
    """

    n_ref: int = 0
    n_coverage: int = 0
    per_record: RecordAverage | None = None

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["per_record"] = None if self.per_record is None else self.per_record.to_dict()
        return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, enum.Enum):
        return value.value
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, ErrorStats):
        return value.to_dict()
    return value


def _as_float_array(values: ArrayLike | None) -> np.ndarray | None:
    """1-D float64 copy; None entries of a list become NaN."""
    if values is None:
        return None
    if isinstance(values, (list, tuple)):
        values = [np.nan if v is None else v for v in values]
    return np.asarray(values, dtype=np.float64).reshape(-1)


def error_stats(est: ArrayLike, ref: ArrayLike, sd: ArrayLike | None = None) -> ErrorStats:
    """Pooled error statistics; windows with a NaN estimate or reference are not scored."""
    e = _as_float_array(est)
    r = _as_float_array(ref)
    if e.shape != r.shape:
        raise ValueError(f"est and ref differ in length: {e.shape[0]} != {r.shape[0]}")
    ok = np.isfinite(e) & np.isfinite(r)
    err = e[ok] - r[ok]
    n = int(err.size)
    if n == 0:
        return ErrorStats()
    abs_err = np.abs(err)
    me = float(err.mean())
    sd_err = float(err.std(ddof=1)) if n >= 2 else None
    mae = float(abs_err.mean())
    rmse = float(math.sqrt(float(np.mean(err * err))))
    w5, w10, w15 = (float(np.mean(abs_err <= t + _TOL_MMHG)) for t in (5.0, 10.0, 15.0))
    cov = _coverage(e[ok], r[ok], None if sd is None else _as_float_array(sd)[ok])[0]
    return ErrorStats(
        n=n, me=me, sd=sd_err, mae=mae, rmse=rmse, within5=w5, within10=w10, within15=w15,
        coverage90=cov, bhs=bhs_grade(w5, w10, w15), ieee1708=ieee1708_grade(mae),
        aami_pass=aami_pass(me, sd_err),
    )


def _coverage(e: np.ndarray, r: np.ndarray, s: np.ndarray | None) -> tuple[float | None, int]:
    if s is None:
        return None, 0
    has = np.isfinite(s) & (s >= 0)
    k = int(has.sum())
    if k == 0:
        return None, 0
    inside = np.abs(r[has] - e[has]) <= Z90 * s[has] + _TOL_MMHG
    return float(inside.mean()), k


def _mean_or_none(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return float(np.mean(vals)) if vals else None


def _record_average(per_record: list[ErrorStats]) -> RecordAverage | None:
    scored = [s for s in per_record if s.n > 0]
    if not scored:
        return None
    avg = {k: _mean_or_none([getattr(s, k) for s in scored])
           for k in ("me", "sd", "mae", "rmse", "within5", "within10", "within15", "coverage90")}
    return RecordAverage(
        n=sum(s.n for s in scored), records=len(scored), **avg,
        bhs=bhs_grade(avg["within5"], avg["within10"], avg["within15"]),
        ieee1708=ieee1708_grade(avg["mae"]), aami_pass=aami_pass(avg["me"], avg["sd"]),
    )


def score(
    est: ArrayLike,
    ref: ArrayLike,
    sd: ArrayLike | None = None,
    record_ids: Sequence[Any] | None = None,
) -> QuantityMetrics:
    """Score one quantity (e.g. SBP) over windows: pooled metrics and, given ``record_ids``,
    the per-record average.

    ``est``, ``ref`` (and ``sd``, ``record_ids`` when given) are aligned 1-D sequences, one entry
    per scored window; None or NaN means missing. Raises ValueError only for misaligned inputs.
    """
    e = _as_float_array(est)
    r = _as_float_array(ref)
    s = _as_float_array(sd)
    for name, other in (("sd", s), ("record_ids", record_ids)):
        if other is not None and len(other) != e.shape[0]:
            raise ValueError(f"{name} has {len(other)} entries, est has {e.shape[0]}")
    pooled = error_stats(e, r, s)
    has_ref = np.isfinite(r)
    ok = has_ref & np.isfinite(e)
    _, n_cov = _coverage(e[ok], r[ok], None if s is None else s[ok])
    per_record = None
    if record_ids is not None:
        ids = np.asarray([str(x) for x in record_ids], dtype=object)
        stats = []
        for rec in dict.fromkeys(ids.tolist()):
            m = ids == rec
            stats.append(error_stats(e[m], r[m], None if s is None else s[m]))
        per_record = _record_average(stats)
    base = {f.name: getattr(pooled, f.name) for f in fields(ErrorStats)}
    return QuantityMetrics(**base, n_ref=int(has_ref.sum()), n_coverage=n_cov, per_record=per_record)
