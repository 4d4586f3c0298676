"""Results of a validation run: a score sheet of windows, its JSON document and text table,
and a small progress bar on stderr.

A :class:`ScoreSheet` collects one row per (record, window, method): the method's estimate (NaN
when it abstained or was rejected), its 1-sigma uncertainty if any, and the window's reference.
The caller decides which windows are scored (issue 2: every window after the first calibration
with a valid reference, the same set for every method) and adds a row for every method on each
of them, abstentions included, so every method is scored on the same windows.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from bpstream.models import QuantityMetrics, score

from ._change import change_block
from ._progress import ProgressBar, iter_with_progress

__all__ = ["QUANTITIES", "ScoreSheet", "ProgressBar", "iter_with_progress"]

QUANTITIES: tuple[str, ...] = ("sbp", "dbp", "map")
_RESERVED = ("protocol", "records", "windows", "methods", "rejected")


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


class ScoreSheet:
    """Accumulates scored windows for several methods; then metrics, JSON and a table.

    ``methods`` fixes the column order (others are appended in order of first appearance).
    """

    def __init__(self, methods: Sequence[str] = ()) -> None:
        self._cols: dict[str, dict[str, list]] = {}
        self._records: dict[str, None] = {}
        self._times: dict[str, set[float]] = {}
        self._keys: set[tuple[str, float, str]] = set()
        self._rejected: dict[str, dict[str, int]] = {}
        self._flags: dict[str, list] = {"flag": [], "d_sbp": [], "d_dbp": []}
        for m in methods:
            self._method(m)

    def _method(self, method: str) -> dict[str, list]:
        cols = self._cols.get(method)
        if cols is None:
            names = (["record", "t_s"] + [f"{p}{q}" for p in ("est_", "sd_", "ref_", "cal_") for q in QUANTITIES]
                     + ["cal_age_s", "validity"])
            cols = self._cols[method] = {k: [] for k in names}
        return cols

    # -- filling -------------------------------------------------------------------------------
    def add_record(self, record: str) -> None:
        """Count a replayed record, even if none of its windows gets scored."""
        self._records.setdefault(str(record), None)

    def add(
        self, record: str, t_s: float, method: str, *,
        sbp_mmhg: float | None, dbp_mmhg: float | None, map_mmhg: float | None,
        ref_sbp_mmhg: float | None, ref_dbp_mmhg: float | None, ref_map_mmhg: float | None,
        sbp_sd_mmhg: float | None = None, dbp_sd_mmhg: float | None = None,
        map_sd_mmhg: float | None = None,
        cal_sbp_mmhg: float | None = None, cal_dbp_mmhg: float | None = None, cal_map_mmhg: float | None = None,
        cal_age_s: float | None = None, validity: str | None = None,
    ) -> None:
        """Add one scored window for one method; None means no estimate / no reference / no sd / no
        calibration. ``cal_*`` is the last accepted calibration value before this window's estimate.

        Raises ValueError if the same (record, t_s, method) was added before.
        """
        key = (str(record), float(t_s), str(method))
        if key in self._keys:
            raise ValueError(f"window at t={t_s} s of a record was already scored for {method!r}")
        self._keys.add(key)
        self.add_record(record)
        self._times.setdefault(key[0], set()).add(key[1])
        cols = self._method(str(method))
        cols["record"].append(key[0])
        cols["t_s"].append(key[1])
        values = {
            "est_sbp": sbp_mmhg, "est_dbp": dbp_mmhg, "est_map": map_mmhg,
            "sd_sbp": sbp_sd_mmhg, "sd_dbp": dbp_sd_mmhg, "sd_map": map_sd_mmhg,
            "ref_sbp": ref_sbp_mmhg, "ref_dbp": ref_dbp_mmhg, "ref_map": ref_map_mmhg,
            "cal_sbp": cal_sbp_mmhg, "cal_dbp": cal_dbp_mmhg, "cal_map": cal_map_mmhg, "cal_age_s": cal_age_s,
        }
        for name, value in values.items():
            cols[name].append(_num(value))
        cols["validity"].append(None if validity is None else str(getattr(validity, "value", validity)))

    def add_estimate(self, record: str, t_s: float, method: str, estimate: Any, reference: Any,
                     calibration: Any = None, cal_age_s: float | None = None) -> None:
        """Add a row from an ``Estimate``, a ``Reference`` and the last calibration (read by attribute:
        ``sbp_mmhg``, ``sbp_sd_mmhg``, ... ; a missing attribute counts as None)."""
        kw: dict[str, Any] = {}
        for q in QUANTITIES:
            kw[f"{q}_mmhg"] = getattr(estimate, f"{q}_mmhg", None)
            kw[f"{q}_sd_mmhg"] = getattr(estimate, f"{q}_sd_mmhg", None)
            kw[f"ref_{q}_mmhg"] = getattr(reference, f"{q}_mmhg", None)
            kw[f"cal_{q}_mmhg"] = getattr(calibration, f"{q}_mmhg", None)
        self.add(record, t_s, method, **kw, cal_age_s=cal_age_s, validity=getattr(estimate, "validity", None))

    def add_flag(self, record: str, t_s: float, flagged: bool, calibration: Any, reference: Any) -> None:
        """Whether ``calibration_suggested`` was in force at a scored window (the published method's evidence),
        with the true change since the calibration, for its sensitivity and false-alarm rate."""
        for q in ("sbp", "dbp"):
            ref, cal = getattr(reference, f"{q}_mmhg", None), getattr(calibration, f"{q}_mmhg", None)
            self._flags[f"d_{q}"].append(math.nan if ref is None or cal is None else float(ref) - float(cal))
        self._flags["flag"].append(bool(flagged))

    def flag_rates(self) -> dict[str, Any]:
        """Share of scored windows flagged ``calibration_suggested``, per change stratum of SBP and DBP."""
        from ._change import STRATA

        flag = np.asarray(self._flags["flag"], bool)
        out: dict[str, Any] = {"n": int(len(flag)), "flagged": float(flag.mean()) if len(flag) else None}
        for q in ("sbp", "dbp"):
            d = np.abs(np.asarray(self._flags[f"d_{q}"], float))
            out[q] = {}
            for band, lo, hi in STRATA[q]:
                m = np.isfinite(d) & (d >= lo) & (d < hi)
                out[q][band] = {"n": int(m.sum()), "flagged": float(flag[m].mean()) if m.any() else None}
        return out

    def add_rejected(self, stage: str, reason: Any, n: int = 1) -> None:
        """Count ``n`` windows rejected at ``stage`` ("input" or "label", others allowed) for
        ``reason`` (a ``Reason`` member or its wire name)."""
        name = str(getattr(reason, "value", reason))
        block = self._rejected.setdefault(str(stage), {})
        block[name] = block.get(name, 0) + int(n)

    # -- reading -------------------------------------------------------------------------------
    @property
    def methods(self) -> list[str]:
        return list(self._cols)

    @property
    def records(self) -> list[str]:
        return list(self._records)

    @property
    def n_windows(self) -> int:
        """Distinct (record, t_s) windows scored for at least one method."""
        return sum(len(ts) for ts in self._times.values())

    def same_windows(self) -> bool:
        """True when every method was scored on the same set of windows."""
        sets = [set(zip(c["record"], c["t_s"])) for c in self._cols.values()]
        return all(s == sets[0] for s in sets[1:])

    def metrics(self, method: str) -> dict[str, QuantityMetrics]:
        """Pooled and per-record metrics of ``method`` for sbp, dbp and map."""
        c = self._method(method)
        return {q: score(c[f"est_{q}"], c[f"ref_{q}"], sd=c[f"sd_{q}"], record_ids=c["record"])
                for q in QUANTITIES}

    def columns(self, method: str) -> dict[str, list]:
        """A copy of one method's row columns (est_/sd_/ref_/cal_ per quantity, cal_age_s, validity, ...)."""
        return {k: list(v) for k, v in self._method(method).items()}

    def method_pairs(self, method: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        """(estimates, references) of one method, each {quantity: array}, for Bland-Altman plots."""
        c = self._method(method)
        return ({q: np.asarray(c[f"est_{q}"]) for q in QUANTITIES},
                {q: np.asarray(c[f"ref_{q}"]) for q in QUANTITIES})

    def record_series(self, record: str) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, dict[str, np.ndarray]]]:
        """(t_s, reference {q: array}, estimates {method: {q: array}}) of one record on a common,
        sorted time axis (NaN where a method has no row at that time)."""
        times = sorted(self._times.get(str(record), ()))
        index = {t: i for i, t in enumerate(times)}
        t_s = np.asarray(times, dtype=float)
        ref = {q: np.full(len(times), np.nan) for q in QUANTITIES}
        est: dict[str, dict[str, np.ndarray]] = {}
        for method, c in self._cols.items():
            rows = np.flatnonzero(np.asarray(c["record"], dtype=object) == str(record))
            if rows.size == 0:
                continue
            j = np.asarray([index[c["t_s"][i]] for i in rows], dtype=int)
            est[method] = {}
            for q in QUANTITIES:
                est[method][q] = np.full(len(times), np.nan)
                est[method][q][j] = np.asarray(c[f"est_{q}"], dtype=float)[rows]
                r = np.asarray(c[f"ref_{q}"], dtype=float)[rows]
                fill = np.isnan(ref[q][j])
                ref[q][j[fill]] = r[fill]
        return t_s, ref, est

    # -- output --------------------------------------------------------------------------------
    def to_json(self, protocol: Mapping[str, Any], extra: Mapping[str, Any] | None = None,
                rejected: Mapping[str, Mapping[str, int]] | None = None) -> dict[str, Any]:
        """The results document (a JSON-ready dict).

        Shape: ``{"protocol", "records", "windows", "methods": {name: {"n", "sbp", "dbp", "map"}},
        "rejected": {"input": {reason: n}, "label": {...}}, "records_scored", "same_windows", ...extra}``.
        ``rejected`` given here is added to the counts from :meth:`add_rejected`; it lists only the
        stages with counts, so it is ``{}`` (falsy) when nothing was rejected.
        ``extra`` keys may not replace the standard keys (ValueError).
        """
        scored = set()
        methods: dict[str, Any] = {}
        for method, c in self._cols.items():
            scored.update(c["record"])
            entry: dict[str, Any] = {"n": len(c["t_s"])}
            for q, m in self.metrics(method).items():
                entry[q] = {**m.to_dict(), **change_block(c, q)}
            methods[method] = entry
        counts = {k: dict(v) for k, v in self._rejected.items()}
        for stage, block in (rejected or {}).items():
            dest = counts.setdefault(str(stage), {})
            for reason, n in block.items():
                name = str(getattr(reason, "value", reason))
                dest[name] = dest.get(name, 0) + int(n)
        doc: dict[str, Any] = {
            "protocol": dict(protocol), "records": len(self._records), "windows": self.n_windows,
            "methods": methods, "rejected": counts, "records_scored": len(scored),
            "same_windows": self.same_windows(),
        }
        if self._flags["flag"]:
            doc["calibration_suggested"] = self.flag_rates()
        for key, value in (extra or {}).items():
            if key in doc:
                raise ValueError(f"extra key {key!r} would replace a standard key of the results")
            doc[key] = value
        return doc

    def write_json(self, path: str | Path, protocol: Mapping[str, Any],
                   extra: Mapping[str, Any] | None = None,
                   rejected: Mapping[str, Mapping[str, int]] | None = None) -> Path:
        """Write :meth:`to_json` to ``path`` (strict JSON: no NaN), creating missing folders."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_json(protocol, extra, rejected), indent=2, allow_nan=False)
        path.write_text(text + "\n", encoding="utf-8")
        return path

    def write_windows_csv(self, path: str | Path) -> Path:
        """One row per scored window and method (mmHg, seconds; an empty cell for none)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        head = ["record", "t_end_s", "method"] + [f"{p}_{q}" for p in ("ref", "cal") for q in QUANTITIES] + \
            ["cal_age_s"] + [f"{p}_{q}" for p in ("est", "sd") for q in QUANTITIES] + ["validity"]
        src = {"t_end_s": "t_s"}
        with path.open("w", newline="", encoding="utf-8") as f:
            out = csv.writer(f)
            out.writerow(head)
            for method, c in self._cols.items():
                for i in range(len(c["t_s"])):
                    row = []
                    for name in head:
                        v = method if name == "method" else c[src.get(name, name)][i]
                        row.append("" if v is None or (isinstance(v, float) and not math.isfinite(v)) else v)
                    out.writerow(row)
        return path

    def format_table(self, per_record: bool = True) -> str:
        """A plain-ASCII table, one block per quantity, one row per method."""
        head = (f"{'':<14}{'n':>7}{'MAE':>7}{'ME +- SD':>16}{'RMSE':>7}{'<=5':>6}{'<=10':>6}"
                f"{'<=15':>6}{'BHS':>5}{'IEEE':>5}{'AAMI':>6}{'cov90':>7}")
        if per_record:
            head += f"{'MAE/rec':>9}"
        lines = [f"{len(self._records)} records, {self.n_windows} scored windows; mmHg, within and cov90 in %"]
        all_metrics = {m: self.metrics(m) for m in self._cols}
        for q in QUANTITIES:
            lines += ["", q.upper() + head[len(q):]]
            for method, ms in all_metrics.items():
                lines.append(_table_row(method, ms[q], per_record))
        return "\n".join(lines)


def _fmt(value: float | None, spec: str, width: int) -> str:
    return f"{'-' if value is None else format(value, spec):>{width}}"


def _table_row(method: str, m: QuantityMetrics, per_record: bool) -> str:
    me_sd = "-" if m.me is None else f"{m.me:+.1f} +- {'-' if m.sd is None else format(m.sd, '.1f')}"
    aami = None if m.aami_pass is None else ("pass" if m.aami_pass else "fail")
    pct = [None if w is None else 100.0 * w for w in (m.within5, m.within10, m.within15)]
    row = (f"{method[:13]:<14}{m.n:>7}{_fmt(m.mae, '.1f', 7)}{me_sd:>16}{_fmt(m.rmse, '.1f', 7)}"
           + "".join(_fmt(p, '.0f', 6) for p in pct)
           + f"{'-' if m.bhs is None else m.bhs.value:>5}{'-' if m.ieee1708 is None else m.ieee1708.value:>5}"
           + f"{'-' if aami is None else aami:>6}"
           + _fmt(None if m.coverage90 is None else 100.0 * m.coverage90, '.0f', 7))
    if per_record:
        row += _fmt(None if m.per_record is None else m.per_record.mae, '.1f', 9)
    return row
