"""The board's pure tile logic (``stream/kafka/_board_state.py``) and its rendering (``stream/kafka/_board_html.py``)."""

from __future__ import annotations

import json

import re

import pytest

from bpstream.models._base import Validity
from bpstream.stream.kafka._board_html import CSP, page, tiles_html, tiles_json, trend_svg
from bpstream.stream.kafka._board_state import GAP_S, STALE_S, TREND_S, BoardState, MarkKind, TileStatus
from bpstream.stream.kafka._schemas import to_iso

T0 = 1_780_000_000.0


def est(seq: int, t_end: float, validity: str = "valid", sbp: float | None = 120.0, dbp: float | None = 70.0,
        map_: float | None = 87.0, sd: float | None = 4.0, patient: str = "p-1", bed: str | None = "ICU-1",
        reasons=(), published: float | None = None, cal_count: int = 1, cal_age: float | None = 30.0) -> dict:
    def q(v):
        return None if v is None else {"value": v, "unit": "mm[Hg]", "sd": sd}

    numbers = validity == "valid"
    return {"schema": "bp.estimates.v1", "patient_id": patient, "bed": bed, "seq": seq,
            "window_start": to_iso(t_end - 10), "window_end": to_iso(t_end), "validity": validity,
            "reasons": list(reasons), "quality": {"input_usable": numbers, "ecg": 0.91, "ppg": 0.8,
                                                  "input_reasons": [] if numbers else list(reasons)},
            "sbp": q(sbp) if numbers else None, "dbp": q(dbp) if numbers else None,
            "map": q(map_) if numbers else None, "calibration": {"count": cal_count, "age_s": cal_age},
            "published_at": to_iso(T0 + 1000 if published is None else published)}


def event(kind: str, at: float | None, patient: str = "p-1", **detail) -> dict:
    return {"schema": "bp.events.v1", "patient_id": patient, "type": kind, "at": None if at is None else to_iso(at),
            "reason": None, "command_id": None, "detail": detail, "published_at": to_iso(T0)}


def only(state: BoardState, now_s: float = T0 + 1000):
    (tile,) = state.tiles(now_s)
    return tile


def test_valid_latest_shows_numbers_with_the_90_percent_interval():
    s = BoardState()
    s.add(est(1, T0, sd=4.0), False)
    t = only(s)
    assert t.status is TileStatus.NUMBERS and t.validity is Validity.VALID
    assert t.reading.sbp.value_mmhg == 120.0 and t.reading.dbp.value_mmhg == 70.0 and t.reading.map.value_mmhg == 87.0
    assert t.reading.sbp.lo90_mmhg == pytest.approx(120 - 1.645 * 4) and t.reading.sbp.hi90_mmhg == pytest.approx(126.58)
    html = tiles_html([t])
    assert '<span class="sbp">120</span>' in html and '<span class="dbp">70</span>' in html
    assert '<span class="sbp-lo">113</span>' in html and '<span class="sbp-hi">127</span>' in html
    assert "calibrations: 1, last 30 s ago" in html and "ECG 0.91" in html


def test_no_sd_means_no_interval_invented():
    s = BoardState()
    s.add(est(1, T0, sd=None), False)
    t = only(s)
    assert t.reading.sbp.lo90_mmhg is None and "SBP 90 %: not given" in tiles_html([t])


@pytest.mark.parametrize("validity,reasons", [("invalid", ["ppg_flat"]), ("uncalibrated", ["no_calibration"]),
                                              ("questionable", ["model_rolled_back"]), ("calibrating", [])])
def test_latest_window_that_is_not_valid_shows_validity_and_reasons_and_no_number(validity, reasons):
    s = BoardState()
    s.add(est(1, T0, sbp=133.0), False)  # an earlier valid window is not carried over
    doc = est(2, T0 + 2, validity, reasons=reasons)
    if validity == "questionable":  # numbers on the wire, but the board shows only valid ones
        doc["sbp"], doc["dbp"] = {"value": 141.0, "sd": 2.0}, {"value": 77.0, "sd": 2.0}
    s.add(doc, False)
    t = only(s)
    assert t.status is TileStatus.NO_NUMBERS and t.reading is None and t.validity.value == validity
    assert t.reasons == tuple(reasons)
    html = tiles_html([t])
    assert 'class="numbers"' not in html and "133" not in html and "141" not in html
    assert f'<div class="validity">{validity}</div>' in html
    for r in reasons:
        assert r in html
    assert tiles_json([t])[0]["reading"] is None


def test_an_out_of_order_older_window_does_not_replace_the_latest():
    s = BoardState()
    s.add(est(5, T0 + 10, "invalid", reasons=["ecg_flat"]), False)
    s.add(est(4, T0 + 8, sbp=150.0), False)  # redelivered / late: older seq
    t = only(s)
    assert t.seq == 5 and t.status is TileStatus.NO_NUMBERS


def test_stale_tile_shows_no_number():
    s = BoardState()
    s.add(est(1, T0, published=T0), False)
    assert only(s, T0 + STALE_S - 1).status is TileStatus.NUMBERS
    t = only(s, T0 + STALE_S + 5)
    assert t.status is TileStatus.STALE and t.reading is None
    assert 'class="numbers"' not in tiles_html([t]) and "no estimate for 65 s" in tiles_html([t])


def test_invalid_windows_and_missing_windows_are_gaps_in_the_trend():
    s = BoardState()
    seq = 0
    for i in range(10):  # valid 0..18 s, invalid 20..28 s, valid 30..48 s, nothing 50..68 s, valid 70..78 s
        seq += 1
        s.add(est(seq, T0 + 2 * i), False)
    for i in range(10, 15):
        seq += 1
        s.add(est(seq, T0 + 2 * i, "invalid", reasons=["ppg_flat"]), False)
    for i in range(15, 25):
        seq += 1
        s.add(est(seq, T0 + 2 * i), False)
    for i in range(35, 40):
        seq += 1
        s.add(est(seq, T0 + 2 * i), False)
    t = only(s)
    runs = [(seg[0].t_s - T0, seg[-1].t_s - T0) for seg in t.segments]
    assert runs == [(0, 18), (30, 48), (70, 78)]
    assert t.t_from_s == T0  # less than 30 min seen: the trend starts at the first window
    assert [(a - T0, b - T0) for a, b in t.gaps] == [(18, 30), (48, 70)]
    svg = trend_svg(t)
    assert svg.count('<polyline class="run sbp"') == 3 and svg.count('class="gap"') == 2
    # no line crosses a gap: each polyline's points lie inside one run (x is rounded to 0.1 px = 0.5 s)
    lines = re.findall(r'class="run sbp"[^>]*points="([^"]+)"', svg)
    for (a, b), pts in zip(runs, lines):
        ts = [t.t_from_s + float(p.split(",")[0]) / 360 * (t.window_end_s - t.t_from_s) - T0 for p in pts.split()]
        assert a - 1 <= min(ts) and max(ts) <= b + 1, (a, b, ts)


def test_a_step_longer_than_gap_s_splits_a_run():
    s = BoardState()
    s.add(est(1, T0), False)
    s.add(est(2, T0 + GAP_S), False)
    s.add(est(3, T0 + 2 * GAP_S + 0.5), False)
    assert [len(seg) for seg in only(s).segments] == [2, 1]


def test_trend_keeps_only_the_last_30_minutes():
    s = BoardState()
    for i in range(1200):  # 40 minutes of 2-s windows
        s.add(est(i + 1, T0 + 2 * i), False)
    s.add(event("calibration_accepted", T0 + 60, source="cuff"), True)  # older than 30 min before the latest
    s.add(event("calibration_accepted", T0 + 2000, source="arterial"), True)
    t = only(s)
    latest = T0 + 2 * 1199
    pts = [p.t_s for seg in t.segments for p in seg]
    assert min(pts) >= latest - TREND_S and max(pts) == latest
    assert len(pts) == int(TREND_S / 2) + 1
    assert [m.t_s for m in t.marks] == [T0 + 2000]
    assert t.t_from_s == latest - TREND_S
    s.add(est(1201, latest + 2, "invalid", reasons=["ppg_flat"]), False)
    assert only(s).gaps == ((latest, latest + 2),)  # a trailing stretch without a valid window


def test_bed_label_shown_patient_id_kept_back():
    s = BoardState()
    s.add(est(1, T0, patient="mrn-0042", bed="ICU3-12"), False)
    s.add(est(1, T0, patient="p-no-bed", bed=None), False)
    tiles = s.tiles(T0 + 1000)
    assert [t.label for t in tiles] == ["ICU3-12", "p-no-bed"]  # no bed: the patient id is the only label
    assert "mrn-0042" not in tiles_html(tiles) and "mrn-0042" not in page(tiles)
    assert "mrn-0042" not in str(tiles_json(tiles))


def test_calibrations_and_suggestions_are_marked():
    s = BoardState()
    for i in range(30):
        s.add(est(i + 1, T0 + 2 * i), False)
    s.add(event("calibration_accepted", T0 + 10, source="cuff"), True)
    s.add(event("calibration_accepted", T0 + 10, source="cuff"), True)  # redelivered: one mark
    s.add(event("calibration_suggested", T0 + 40, reason="interval_left_calibration"), True)
    s.add(event("calibration_rejected", T0 + 20), True)
    s.add(event("patient_reset", None), True)
    t = only(s)
    assert [(m.kind, m.t_s - T0, m.reason) for m in t.marks] == [
        (MarkKind.CALIBRATION, 10, "cuff"), (MarkKind.CALIBRATION_SUGGESTED, 40, "interval_left_calibration")]
    svg = trend_svg(t)
    assert svg.count('class="mark calibration"') == 1 and svg.count('class="mark calibration_suggested"') == 1
    assert "calibration suggested (interval_left_calibration)" in svg


def test_discharge_removes_the_tile_and_patients_are_separate():
    s = BoardState()
    s.add(est(1, T0, patient="a", bed="B1"), False)
    s.add(est(1, T0, patient="b", bed="B2", validity="uncalibrated", reasons=["no_calibration"]), False)
    assert [(t.label, t.status) for t in s.tiles(T0 + 1000)] == [("B1", TileStatus.NUMBERS),
                                                               ("B2", TileStatus.NO_NUMBERS)]
    s.add(event("patient_discharged", T0 + 5, patient="a"), True)
    assert [t.label for t in s.tiles(T0 + 1000)] == ["B2"]


@pytest.mark.parametrize("doc", [
    [], {"patient_id": 3}, {"patient_id": "x", "seq": 1}, {**est(1, T0), "validity": "great"},
    {**est(1, T0), "window_end": "yesterday"}, {**est(1, T0), "quality": [1]}, {**est(1, T0), "seq": "1"},
    {**est(1, T0), "sbp": {"value": "120"}}, {**est(1, T0), "reasons": "ppg_flat"},
    {**est(1, T0), "sbp": {"value": float("inf")}}, {**est(1, T0), "calibration": {"count": json.loads("1e999")}},
])
def test_a_document_of_another_shape_is_refused_and_changes_nothing(doc):
    from bpstream.stream.core._errors import MessageError

    s = BoardState()
    s.add(est(1, T0), False)
    with pytest.raises((KeyError, TypeError, ValueError, MessageError)):
        s.add(doc, False)
    assert only(s).seq == 1 and only(s).status is TileStatus.NUMBERS


def test_page_is_self_contained_and_escapes_labels():
    s = BoardState()
    s.add(est(1, T0, bed='<b onclick="x">'), False)
    html = page(s.tiles(T0 + 1000))
    assert '<b onclick="x">' not in html and "&lt;b onclick=&quot;x&quot;&gt;" in html
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//', html) and "http://" not in html.replace(
        'xmlns="http://www.w3.org/2000/svg"', "")
    assert "default-src 'none'" in CSP and "connect-src 'self'" in CSP


def test_one_invalid_window_between_valid_ones_is_a_gap():
    s = BoardState()
    for seq, t in enumerate((0, 2, 4), 1):
        s.add(est(seq, T0 + t), False)
    s.add(est(4, T0 + 6, "invalid", reasons=["ecg_noisy"]), False)
    s.add(est(5, T0 + 8), False)
    s.add(est(6, T0 + 10), False)
    t = only(s)
    assert [(seg[0].t_s - T0, seg[-1].t_s - T0) for seg in t.segments] == [(0, 4), (8, 10)]
    assert [(a - T0, b - T0) for a, b in t.gaps] == [(4, 8)]
