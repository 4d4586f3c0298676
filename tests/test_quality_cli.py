"""``bpstream quality``: rejected fractions per channel and reason, label rejections, SBP consistency."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bpstream.stream.cli import main
from bpstream.stream.cli.quality import _adjacent_diffs, _consistency

from ._data import MIMIC, PN2015


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    out = tmp_path_factory.mktemp("quality") / "q.json"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["quality", str(PN2015), "--records", "a555l,b330s,v370s,f362s", "--json", str(out)])
    return rc, json.loads(out.read_text()), buf.getvalue()


def test_quality_document_and_table(report):
    rc, doc, text = report
    assert rc == 0
    assert doc["records"] == 4 and doc["windows"] >= 4 * 29 and doc["hop_s"] == 10.0
    rej = doc["input"]["rejected_fraction"]
    assert set(rej) == {"ecg", "ppg", "any"} and 0 < rej["ecg"] < 1 and rej["any"] >= max(rej["ecg"], rej["ppg"])
    # b330s (a quarter of the windows) has a saturated ECG: clipping is a leading ECG reason
    assert doc["input"]["reasons"]["ecg_clipped"] >= 0.15
    assert all(0 < v <= 1 for v in doc["input"]["reasons"].values())
    assert doc["label"]["windows_with_abp"] == doc["windows"] and 0 <= doc["label"]["rejected_fraction"] < 1
    assert "input windows rejected" in text and "ecg_clipped" in text and "after label filtering" in text


def test_label_filtering_makes_the_reference_more_consistent(report):
    _, doc, _ = report
    c = doc["reference_consistency"]
    assert c["after_label"]["pairs"] <= c["before"]["pairs"]
    assert c["after_label_and_input"]["pairs"] <= c["after_label"]["pairs"]
    assert c["after_label"]["sd_dsbp_mmhg"] < c["before"]["sd_dsbp_mmhg"]


def test_adjacent_differences_stay_within_a_segment():
    d = _adjacent_diffs([100.0, 104.0, np.nan, 110.0, 111.0, 90.0], [0, 0, 0, 0, 0, 1])
    assert d.tolist() == [4.0, 1.0]  # pairs touching NaN and the segment change are left out
    c = _consistency(np.array([4.0, -4.0, 12.0]))
    assert c["pairs"] == 3 and c["median_abs_dsbp_mmhg"] == 4.0 and c["frac_abs_dsbp_over_10"] == pytest.approx(1 / 3, abs=1e-4)
    assert _consistency(np.zeros(0))["sd_dsbp_mmhg"] is None


def test_record_without_ppg_is_skipped_with_its_reason(capsys):
    rc = main(["quality", str(MIMIC / "mimic2_s00001" / "3975656_0012")])
    assert rc == 1
    err = capsys.readouterr().err
    assert "3975656_0012" in err and "ppg" in err


def test_missing_path_is_a_clear_error(capsys, tmp_path):
    rc = main(["quality", str(tmp_path / "nowhere")])
    assert rc == 1
    assert "bpstream quality" in capsys.readouterr().err
