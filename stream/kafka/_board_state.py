"""The board's state: one tile per patient from ``bp.estimates.v1`` and ``bp.events.v1`` documents (pure, no IO).

``BoardState.add(doc, is_event)`` folds one decoded document in; ``tiles(now_s)`` gives the tiles. Nothing here
reads a clock, the network or the environment: ``now_s`` (the board's wall clock, compared with the worker's
``published_at``) only decides whether a tile is stale. Times of the trend are stream times (``window_end``),
and each patient's trend is the 30 minutes before that patient's latest window (less while the board
has seen less of the patient: from the first window kept).

Display rules: numbers (SBP/DBP/MAP and their 90 % interval, value +- 1.645 sd) only when the latest estimate is
``valid`` and not stale; otherwise the validity and its reasons, and no number. In the trend, every window that
is not ``valid`` (and every stretch without windows, > ``GAP_S``) is a gap.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field
from typing import Any

from bpstream.models import Validity
from bpstream.stream.core import EventKind
from ._schemas import from_iso

__all__ = ["BoardState", "Tile", "Reading", "Quantity", "TrendPoint", "Mark", "MarkKind", "TileStatus",
           "TREND_S", "GAP_S", "STALE_S", "Z90"]

TREND_S = 30 * 60.0  # the trend shows each patient's last 30 minutes of stream time
GAP_S = 5.0  # consecutive valid windows further apart than this (hop 2 s) are drawn apart
STALE_S = 60.0  # no estimate published for this long (board clock): the tile shows no number
Z90 = 1.645  # 90 % interval = value +- Z90 * sd


class MarkKind(str, enum.Enum):
    """What a mark on the trend stands for."""

    CALIBRATION = "calibration"  # calibration_accepted (the paired window's end)
    CALIBRATION_SUGGESTED = "calibration_suggested"


class TileStatus(str, enum.Enum):
    """Why a tile shows numbers or not."""

    NUMBERS = "numbers"  # the latest estimate is valid and recent
    NO_NUMBERS = "no_numbers"  # the latest estimate is not valid: validity and reasons instead
    STALE = "stale"  # nothing published for STALE_S: no number, whatever the last validity was


_MARKS = {EventKind.CALIBRATION_ACCEPTED.value: MarkKind.CALIBRATION,
          EventKind.CALIBRATION_SUGGESTED.value: MarkKind.CALIBRATION_SUGGESTED}


@dataclass(frozen=True)
class Quantity:
    value_mmhg: float
    lo90_mmhg: float | None  # None when the model gives no sd
    hi90_mmhg: float | None


@dataclass(frozen=True)
class Reading:
    sbp: Quantity
    dbp: Quantity
    map: Quantity | None  # a valid estimate may lack MAP (never invented)


@dataclass(frozen=True)
class TrendPoint:
    t_s: float  # window end, stream time (UTC seconds)
    sbp_mmhg: float
    dbp_mmhg: float
    map_mmhg: float | None


@dataclass(frozen=True)
class Mark:
    t_s: float
    kind: MarkKind
    reason: str | None  # calibration_suggested: detail.reason; calibration: detail.source


@dataclass(frozen=True)
class Tile:
    key: str  # the patient id: internal only (sorting, the state); never rendered when a bed label exists
    label: str  # the bed label, else the patient id
    seq: int  # of the latest estimate
    window_end_s: float
    validity: Validity
    reasons: tuple[str, ...]
    status: TileStatus
    reading: Reading | None  # only with status NUMBERS
    ecg_quality: float | None
    ppg_quality: float | None
    input_usable: bool
    input_reasons: tuple[str, ...]
    calibration_count: int
    calibration_age_s: float | None
    since_published_s: float | None  # board clock - published_at of the latest estimate
    t_from_s: float  # the trend's span: from max(window_end_s - TREND_S, the first window or mark kept) ...
    segments: tuple[tuple[TrendPoint, ...], ...]  # runs of valid windows; between runs: gaps
    gaps: tuple[tuple[float, float], ...]  # (from, to) stretches without a valid window inside the span
    marks: tuple[Mark, ...]


@dataclass(frozen=True)
class _Point:
    t_s: float
    valid: bool
    sbp: float | None
    dbp: float | None
    map: float | None


@dataclass(frozen=True)
class _Latest:
    """What a tile needs of the latest estimate, checked when it is added (a tile never reads a raw document)."""

    seq: int
    label: str | None
    t_end_s: float
    published_s: float | None
    validity: Validity
    reasons: tuple[str, ...]
    sbp: Quantity | None
    dbp: Quantity | None
    map: Quantity | None
    ecg: float | None
    ppg: float | None
    input_usable: bool
    input_reasons: tuple[str, ...]
    cal_count: int
    cal_age_s: float | None


@dataclass
class _Patient:
    latest: _Latest | None = None
    points: dict[int, _Point] = field(default_factory=dict)  # seq -> point: a redelivered seq replaces
    marks: list[Mark] = field(default_factory=list)


def _obj(doc: dict, name: str) -> dict:
    value = doc.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise TypeError(f"{name} is not an object")
    return value


def _num(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError("not a number")
    if not math.isfinite(value):  # 1e999 parses as inf: never a reading, never a count
        raise ValueError("not a finite number")
    return float(value)


def _strings(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
        raise TypeError("not a list of strings")
    return tuple(value)


def _quantity(doc: dict, name: str) -> Quantity | None:
    q = _obj(doc, name)
    value, sd = _num(q.get("value")), _num(q.get("sd"))
    if value is None:
        return None
    if sd is None:
        return Quantity(value, None, None)
    return Quantity(value, value - Z90 * sd, value + Z90 * sd)


def _latest(doc: dict) -> _Latest:
    seq = doc["seq"]
    if isinstance(seq, bool) or not isinstance(seq, int):
        raise TypeError("seq is not an integer")
    bed = doc.get("bed")
    if bed is not None and not isinstance(bed, str):
        raise TypeError("bed is not a string")
    quality, cal = _obj(doc, "quality"), _obj(doc, "calibration")
    count = _num(cal.get("count"))
    return _Latest(seq=seq, label=bed or None, t_end_s=from_iso(doc["window_end"]),
                   published_s=from_iso(doc["published_at"]) if doc.get("published_at") else None,
                   validity=Validity(doc["validity"]), reasons=_strings(doc.get("reasons")),
                   sbp=_quantity(doc, "sbp"), dbp=_quantity(doc, "dbp"), map=_quantity(doc, "map"),
                   ecg=_num(quality.get("ecg")), ppg=_num(quality.get("ppg")),
                   input_usable=bool(quality.get("input_usable")), input_reasons=_strings(quality.get("input_reasons")),
                   cal_count=int(count or 0), cal_age_s=_num(cal.get("age_s")))


class BoardState:
    """Per-patient latest estimate, trend and marks; feed it every document, ask it for tiles."""

    def __init__(self) -> None:
        self._patients: dict[str, _Patient] = {}

    def add(self, doc: Any, is_event: bool) -> None:
        """Fold in one document. Raises KeyError, TypeError, ValueError or MessageError (a time that is not ISO)
        for a document of another shape; the state is then unchanged."""
        if not isinstance(doc, dict):
            raise TypeError("not a JSON object")
        patient = doc["patient_id"]
        if not isinstance(patient, str):
            raise TypeError("patient_id is not a string")
        if is_event:
            self._add_event(patient, doc)
        else:
            self._add_estimate(patient, doc)

    def _add_estimate(self, patient: str, doc: dict) -> None:
        latest = _latest(doc)
        valid = latest.validity is Validity.VALID and latest.sbp is not None and latest.dbp is not None
        point = _Point(latest.t_end_s, valid, latest.sbp and latest.sbp.value_mmhg,
                       latest.dbp and latest.dbp.value_mmhg, latest.map and latest.map.value_mmhg)
        p = self._patients.setdefault(patient, _Patient())
        p.points[latest.seq] = point
        if p.latest is None or latest.seq >= p.latest.seq:
            p.latest = latest
        self._trim(p)

    def _add_event(self, patient: str, doc: dict) -> None:
        kind = _MARKS.get(doc["type"])
        if doc["type"] == EventKind.PATIENT_DISCHARGED.value:
            self._patients.pop(patient, None)  # the bed is free: its tile goes
            return
        if kind is None or not doc.get("at"):
            return
        detail = _obj(doc, "detail")
        reason = detail.get("reason") if kind is MarkKind.CALIBRATION_SUGGESTED else detail.get("source")
        mark = Mark(from_iso(doc["at"]), kind, None if reason is None else str(reason))
        p = self._patients.setdefault(patient, _Patient())
        if mark not in p.marks:
            p.marks.append(mark)
        self._trim(p)

    @staticmethod
    def _trim(p: _Patient) -> None:
        if p.latest is None:
            return
        t_from = p.latest.t_end_s - TREND_S
        for seq in [s for s, pt in p.points.items() if pt.t_s < t_from]:
            del p.points[seq]
        p.marks[:] = [m for m in p.marks if m.t_s >= t_from]

    def tiles(self, now_s: float | None = None) -> list[Tile]:
        """One tile per patient with at least one estimate, ordered by label."""
        out = [_tile(k, p, now_s) for k, p in self._patients.items() if p.latest is not None]
        return sorted(out, key=lambda t: (t.label, t.key))


def _tile(key: str, p: _Patient, now_s: float | None) -> Tile:
    x = p.latest
    since = None if now_s is None or x.published_s is None else max(0.0, now_s - x.published_s)
    reading = None
    if since is not None and since > STALE_S:
        status = TileStatus.STALE
    elif x.validity is Validity.VALID and x.sbp is not None and x.dbp is not None:
        status, reading = TileStatus.NUMBERS, Reading(x.sbp, x.dbp, x.map)
    else:
        status = TileStatus.NO_NUMBERS
    points = sorted(p.points.values(), key=lambda pt: pt.t_s)
    # the trend spans the last 30 min, or less from the first window kept (a new patient is not a long gap)
    t_from = max(x.t_end_s - TREND_S, min([points[0].t_s] + [m.t_s for m in p.marks]))
    segments, gaps = _segments(points, t_from, x.t_end_s)
    return Tile(key=key, label=x.label or key, seq=x.seq, window_end_s=x.t_end_s, validity=x.validity,
                reasons=x.reasons, status=status, reading=reading, ecg_quality=x.ecg, ppg_quality=x.ppg,
                input_usable=x.input_usable, input_reasons=x.input_reasons, calibration_count=x.cal_count,
                calibration_age_s=x.cal_age_s, since_published_s=since, t_from_s=t_from, segments=segments,
                gaps=gaps, marks=tuple(sorted(p.marks, key=lambda m: m.t_s)))


def _segments(points: list[_Point], t_from: float, t_end: float):
    """Runs of valid windows (a run breaks at a window that is not valid or a step > GAP_S) and the gaps."""
    segments: list[tuple[TrendPoint, ...]] = []
    run: list[TrendPoint] = []
    for pt in points:
        if pt.valid and run and pt.t_s - run[-1].t_s > GAP_S:
            segments.append(tuple(run))
            run = []
        if pt.valid:
            run.append(TrendPoint(pt.t_s, pt.sbp, pt.dbp, pt.map))
        elif run:
            segments.append(tuple(run))
            run = []
    if run:
        segments.append(tuple(run))
    gaps, edge = [], t_from  # the complement of the runs within the span
    for seg in segments:
        if seg[0].t_s > edge:
            gaps.append((edge, seg[0].t_s))
        edge = seg[-1].t_s
    if t_end > edge:
        gaps.append((edge, t_end))
    return tuple(segments), tuple(gaps)
