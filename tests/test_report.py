"""ScoreSheet JSON shape and table, the progress bar, and the PNG plots."""

from __future__ import annotations

import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from bpstream.filters._types import Reason, Reference
from bpstream.models._base import Estimate, Validity
from bpstream.models._metrics import score
from bpstream.stream.evaluation._plots import plot_bland_altman, plot_record, write_plots
from bpstream.stream.evaluation._report import ProgressBar, ScoreSheet

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PROTOCOL = {"calibration": "once", "window_s": 10, "hop_s": 2, "fs_hz": 125}


def _row(sheet, rec, t, method, est, ref, sd=None):
    """est/ref: (sbp, dbp, map) tuples."""
    sheet.add(
        rec, t, method,
        sbp_mmhg=est[0], dbp_mmhg=est[1], map_mmhg=est[2],
        ref_sbp_mmhg=ref[0], ref_dbp_mmhg=ref[1], ref_map_mmhg=ref[2],
        sbp_sd_mmhg=sd, dbp_sd_mmhg=sd, map_sd_mmhg=sd,
    )


@pytest.fixture
def sheet():
    s = ScoreSheet(methods=["mean", "carry_forward"])
    sbp_err = {"a": [1.0, -1.0], "b": [3.0, -3.0]}
    for rec, errs in sbp_err.items():
        for k, e in enumerate(errs):
            ref = (120.0, 70.0, 90.0)
            _row(s, rec, 30.0 + 2 * k, "carry_forward", (120.0 + e, 70.0, 90.0 + e), ref, sd=1.5)
            _row(s, rec, 30.0 + 2 * k, "mean", (130.0, None, 95.0), ref)
    s.add_record("c")  # replayed, never calibrated: counted in records, not in windows
    return s


def test_json_shape_and_values(sheet):
    doc = json.loads(json.dumps(sheet.to_json(PROTOCOL), allow_nan=False))
    assert doc["protocol"] == PROTOCOL
    assert doc["records"] == 3 and doc["records_scored"] == 2
    assert doc["windows"] == 4 and doc["same_windows"] is True
    assert list(doc["methods"]) == ["mean", "carry_forward"]
    cf = doc["methods"]["carry_forward"]
    assert cf["n"] == 4
    assert set(cf) >= {"n", "sbp", "dbp", "map"}
    for q in ("sbp", "dbp", "map"):
        assert {"me", "sd", "mae", "rmse", "within5", "within10", "within15"} <= set(cf[q])
    # errors [1, -1, 3, -3]
    assert cf["sbp"]["me"] == pytest.approx(0.0)
    assert cf["sbp"]["mae"] == pytest.approx(2.0)
    assert cf["sbp"]["rmse"] == pytest.approx(math.sqrt(5.0))
    assert cf["sbp"]["sd"] == pytest.approx(math.sqrt(20 / 3))
    assert cf["sbp"]["per_record"]["records"] == 2
    assert cf["sbp"]["per_record"]["mae"] == pytest.approx(2.0)
    assert cf["sbp"]["coverage90"] == pytest.approx(0.5)  # |3| > 1.645 * 1.5 > |1|
    assert cf["dbp"]["mae"] == pytest.approx(0.0) and cf["dbp"]["bhs"] == "A"
    mean = doc["methods"]["mean"]
    assert mean["n"] == 4
    assert mean["sbp"]["me"] == pytest.approx(10.0) and mean["sbp"]["aami_pass"] is False
    assert mean["sbp"]["coverage90"] is None
    assert mean["dbp"]["n"] == 0 and mean["dbp"]["n_ref"] == 4 and mean["dbp"]["mae"] is None


def test_json_matches_score_directly(sheet):
    doc = sheet.to_json(PROTOCOL)
    direct = score([121.0, 119.0, 123.0, 117.0], [120.0] * 4, sd=[1.5] * 4, record_ids=["a", "a", "b", "b"])
    got = doc["methods"]["carry_forward"]["sbp"]
    assert {k: got[k] for k in direct.to_dict()} == direct.to_dict()
    assert set(got) - set(direct.to_dict()) == {"strata", "trend", "by_age"}  # the change-tracking blocks


def test_rejected_block_merges_counts(sheet):
    sheet.add_rejected("input", Reason.PPG_FLAT, 3)
    sheet.add_rejected("label", "abp_flush")
    doc = sheet.to_json(PROTOCOL, rejected={"input": {Reason.PPG_FLAT: 2, "ecg_nan": 1}})
    assert doc["rejected"] == {"input": {"ppg_flat": 5, "ecg_nan": 1}, "label": {"abp_flush": 1}}
    assert ScoreSheet().to_json(PROTOCOL)["rejected"] == {}


def test_extra_keys_added_never_replace(sheet):
    doc = sheet.to_json(PROTOCOL, extra={"elapsed_s": 1.5})
    assert doc["elapsed_s"] == 1.5
    with pytest.raises(ValueError):
        sheet.to_json(PROTOCOL, extra={"windows": 0})


def test_duplicate_row_raises(sheet):
    with pytest.raises(ValueError):
        _row(sheet, "a", 30.0, "mean", (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))


def test_same_windows_detects_a_method_missing_a_window(sheet):
    _row(sheet, "b", 99.0, "mean", (1.0, 1.0, 1.0), (1.0, 1.0, 1.0))
    assert sheet.same_windows() is False
    assert sheet.to_json(PROTOCOL)["same_windows"] is False
    assert sheet.n_windows == 5


def test_add_estimate_from_real_types():
    s = ScoreSheet()
    ref = Reference(sbp_mmhg=120.0, dbp_mmhg=None, map_mmhg=90.0, usable=True)
    s.add_estimate("a", 40.0, "carry_forward", Estimate(118.0, 60.0, 88.0, sbp_sd_mmhg=3.0), ref)
    s.add_estimate("a", 40.0, "mean",
                   Estimate.empty(Validity.UNCALIBRATED, (Reason.UNCALIBRATED,)), ref)
    m = s.metrics("carry_forward")
    assert m["sbp"].me == pytest.approx(-2.0) and m["sbp"].n_coverage == 1
    assert m["dbp"].n_ref == 0  # partial reference: DBP not scored
    assert s.metrics("mean")["sbp"].n == 0 and s.metrics("mean")["sbp"].n_ref == 1


def test_write_json_is_strict(sheet, tmp_path):
    path = sheet.write_json(tmp_path / "new" / "out.json", PROTOCOL)
    text = path.read_text()
    assert "NaN" not in text
    assert json.loads(text)["windows"] == 4


def test_format_table(sheet):
    table = sheet.format_table()
    lines = table.splitlines()
    assert lines[0].startswith("3 records, 4 scored windows")
    for q in ("SBP", "DBP", "MAP"):
        assert sum(line.startswith(q) for line in lines) == 1
    cf_rows = [line for line in lines if line.startswith("carry_forward")]
    mean_rows = [line for line in lines if line.startswith("mean")]
    assert len(cf_rows) == 3 and len(mean_rows) == 3
    sbp_cf = cf_rows[0].split()
    assert sbp_cf[:6] == ["carry_forward", "4", "2.0", "+0.0", "+-", "2.6"]
    assert "pass" in cf_rows[0] and "fail" in mean_rows[0]
    assert mean_rows[1].split()[1] == "0"  # DBP: no estimates
    assert "MAE/rec" not in sheet.format_table(per_record=False)
    table.encode("ascii")


def test_progress_bar_on_a_pipe_prints_tenths():
    out = io.StringIO()
    with ProgressBar(20, stream=out) as bar:
        for _ in range(20):
            bar.update()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11  # the first update, then each tenth
    assert lines[-1].startswith("records 20/20 [" + "=" * 30 + "] 100%")


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_a_terminal_redraws_in_place():
    out = _Tty()
    with ProgressBar(3, label="recs", stream=out) as bar:
        for _ in range(3):
            bar.update(note="x")
    text = out.getvalue()
    assert text.count("\r") == 3 and text.endswith("\n")
    assert "recs 3/3" in text


def test_plots_write_pngs(tmp_path):
    t = np.arange(0, 600, 2.0)
    ref = {"sbp": 120 + 5 * np.sin(t / 60), "dbp": 70 + 0 * t, "map": 90 + 0 * t}
    ref["sbp"][10:20] = np.nan
    est = {"carry_forward": {q: v + 2 for q, v in ref.items()}, "mean": {"sbp": 130 + 0 * t}}
    p1 = plot_record(tmp_path / "sub" / "rec.png", t, ref, est, title="rec")
    p2 = plot_bland_altman(tmp_path / "ba.png", est["carry_forward"], ref, "carry_forward")
    p3 = plot_bland_altman(tmp_path / "empty.png", {"sbp": [np.nan]}, {"sbp": [120.0]}, "none")
    for p in (p1, p2, p3):
        assert p.read_bytes()[:8] == PNG_MAGIC and p.stat().st_size > 1000


def test_write_plots_from_sheet(sheet, tmp_path):
    paths = write_plots(tmp_path, sheet)
    names = sorted(p.name for p in paths)
    assert names == ["bland_altman_carry_forward.png", "bland_altman_mean.png",
                     "error_by_age_carry_forward.png", "error_by_age_mean.png",
                     "four_quadrant_carry_forward.png", "four_quadrant_mean.png",
                     "record_a.png", "record_b.png"]
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in paths)
    t, ref, est = sheet.record_series("b")
    assert list(t) == [30.0, 32.0]
    assert list(ref["sbp"]) == [120.0, 120.0]
    assert list(est["carry_forward"]["sbp"]) == [123.0, 117.0]
    assert np.isnan(est["mean"]["dbp"]).all()


def test_matplotlib_is_not_imported_by_report_or_plots():
    code = ("import sys, bpstream.stream.evaluation._report, bpstream.stream.evaluation._plots, bpstream.models._metrics; "
            "sys.exit('matplotlib' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
