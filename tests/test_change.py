"""Change-tracking metrics (strata, trend, by_age) against small hand-computed cases, and the per-window CSV."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from bpstream.models import Estimate, Validity
from bpstream.filters import Reference
from bpstream.stream.evaluation._change import by_age, strata, trend
from bpstream.stream.evaluation._report import ScoreSheet
from bpstream.stream.evaluation._replay_local import LastCalibration


def test_strata_hand_computed():
    # cal 100 everywhere; references move by 0, 4, 5, 14.9, 15, 29, 30, -40
    ref = [100, 104, 105, 114.9, 115, 129, 130, 60]
    cal = [100] * 8
    est = [101, 103, 100, 110, 120, 129, 100, 70]
    sd = [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 10.0]
    s = strata(est, ref, cal, "sbp", sd)
    # 0-5: windows 0 (err +1), 1 (err -1)
    assert s["0-5"]["n"] == 2 and s["0-5"]["me"] == pytest.approx(0.0) and s["0-5"]["mae"] == pytest.approx(1.0)
    assert s["0-5"]["sd"] == pytest.approx(math.sqrt(2.0))
    assert s["0-5"]["cov90"] == pytest.approx(1.0)  # |1| <= 1.645
    # 5-15: windows 2 (-5), 3 (-4.9): bound 5 included, 14.9 below 15
    assert s["5-15"]["n"] == 2 and s["5-15"]["mae"] == pytest.approx(4.95) and s["5-15"]["cov90"] == 0.0
    # 15-30: windows 4 (+5), 5 (0)
    assert s["15-30"]["n"] == 2 and s["15-30"]["me"] == pytest.approx(2.5) and s["15-30"]["cov90"] == 0.5
    # 30+: windows 6 (-30), 7 (|d| = 40, err +10, inside 16.45)
    assert s["30+"]["n"] == 2 and s["30+"]["mae"] == pytest.approx(20.0) and s["30+"]["cov90"] == 0.5


def test_dbp_bands_and_missing_values():
    s = strata([70, 80, np.nan, 95], [70, 81, 90, 100], [70, 70, 70, np.nan], "dbp")
    assert [s[b]["n"] for b in ("0-5", "5-10", "10-20", "20+")] == [1, 0, 1, 0]
    assert s["10-20"]["mae"] == pytest.approx(1.0) and s["10-20"]["sd"] is None
    assert s["5-10"] == {"n": 0, "me": None, "sd": None, "mae": None, "cov90": None}
    assert s["0-5"]["cov90"] is None  # no sd given


def test_trend_hand_computed():
    cal = [100.0] * 6
    ref = [110, 90, 120, 80, 102, 100]  # the last two are inside the 5 mmHg exclusion zone
    est = [105, 105, 99, 80, 150, 0]  # +5 vs +10 right; +5 vs -10 wrong; -1 vs +20 wrong; -20 vs -20 right
    t = trend(est, ref, cal)
    assert t["n"] == 4
    assert t["concordance"] == pytest.approx(0.5)
    d_pred, d_true = np.array([5, 5, -1, -20.0]), np.array([10, -10, 20, -20.0])
    assert t["corr"] == pytest.approx(np.corrcoef(d_pred, d_true)[0, 1])


def test_trend_carry_forward_is_never_concordant():
    t = trend([100, 100], [110, 90], [100, 100])
    assert t == {"n": 2, "concordance": 0.0, "corr": None}


def test_by_age_bins():
    b = by_age([1, 2, 3, 4, 5], [0, 0, 0, 0, 0], [0, 59.9, 60, 240, np.nan])
    assert b["0-60"] == {"n": 2, "mae": pytest.approx(1.5)}
    assert b["60-120"] == {"n": 1, "mae": pytest.approx(3.0)}
    assert b["120-240"] == {"n": 0, "mae": None}
    assert b["240+"] == {"n": 1, "mae": pytest.approx(4.0)}


def test_last_calibration_keeps_quantities_a_label_lacks():
    c = LastCalibration()
    c.update(Reference(120.0, 70.0, 90.0, usable=True))
    c.update(Reference(None, None, 85.0, usable=True))
    assert (c.sbp_mmhg, c.dbp_mmhg, c.map_mmhg, c.count) == (120.0, 70.0, 85.0, 2)


def test_sheet_json_blocks_and_csv_rows(tmp_path):
    s = ScoreSheet(["carry_forward"])
    cal = Reference(100.0, 60.0, 75.0, usable=True)
    for i, r in enumerate([100.0, 120.0, 140.0]):
        s.add_estimate("rec", 40.0 + 2 * i, "carry_forward", Estimate(100.0, 60.0, 75.0, validity=Validity.VALID),
                       Reference(r, 60.0, 75.0, usable=True), cal, 2.0 * i)
    doc = s.to_json({"calibration": "once"})
    sbp = doc["methods"]["carry_forward"]["sbp"]
    assert sbp["strata"]["0-5"]["n"] == 1 and sbp["strata"]["15-30"]["n"] == 1 and sbp["strata"]["30+"]["n"] == 1
    assert sbp["trend"] == {"n": 2, "concordance": 0.0, "corr": None}
    assert sbp["by_age"]["0-60"]["n"] == 3
    path = s.write_windows_csv(tmp_path / "w.csv")
    rows = list(csv.DictReader(path.open()))
    assert len(rows) == 3
    assert rows[1]["ref_sbp"] == "120.0" and rows[1]["cal_sbp"] == "100.0" and rows[1]["cal_age_s"] == "2.0"
    assert rows[0]["sd_sbp"] == "" and rows[0]["validity"] == "valid" and rows[0]["t_end_s"] == "40.0"
