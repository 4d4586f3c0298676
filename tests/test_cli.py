"""The command line: validate, demo, and the error for a record without PPG."""

from __future__ import annotations

import json

from bpstream.stream.cli import main

from ._data import MIMIC, PN2015


def test_validate_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "v.json"
    rc = main(["validate", str(PN2015), "--records", "a555l,f362s", "--methods", "mean,carry_forward",
               "--calibration", "every:60", "--json", str(out), "--plot", str(tmp_path / "plots")])
    assert rc == 0
    doc = json.loads(out.read_text())
    assert doc["protocol"]["calibration"] == "every:60" and doc["protocol"]["fs_hz"] == 125.0
    assert doc["records"] == 2 and doc["windows"] > 200
    for m in ("mean", "carry_forward"):
        entry = doc["methods"][m]
        assert entry["n"] == doc["windows"]
        for q in ("sbp", "dbp", "map"):
            assert set(entry[q]) >= {"me", "sd", "mae", "rmse", "within5", "within10", "within15"}
    assert doc["methods"]["carry_forward"]["sbp"]["mae"] < doc["methods"]["mean"]["sbp"]["mae"]
    assert "rejected" in doc and set(doc["rejected"]) >= {"input", "label"}
    table = capsys.readouterr().out
    assert "carry_forward" in table and "MAE" in table
    assert list((tmp_path / "plots").glob("*.png"))


def test_validate_record_without_ppg_is_a_clear_error(capsys):
    rc = main(["validate", str(MIMIC / "mimic2_s00001" / "3975656_0012"), "--methods", "carry_forward"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "3975656_0012" in err and "ppg" in err


def test_demo_runs_on_the_shared_data(capsys):
    rc = main(["demo", "--data", str(PN2015), "--records", "f362s", "--every", "20"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "f362s" in out and "SBP" in out


def test_demo_without_data_says_how_to_download(tmp_path, capsys):
    rc = main(["demo", "--data", str(tmp_path)])
    assert rc == 2
    assert "dl_database" in capsys.readouterr().err
