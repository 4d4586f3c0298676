"""Reading WFDB records: channel roles, multi-segment headers, clear errors."""

from __future__ import annotations

import pytest

from bpstream.stream.core._errors import MissingChannelError
from bpstream.stream.records._records import iter_chunks, list_records, read_record, role_of

from ._data import MIMIC, PN2015, record


def test_roles_by_channel_name():
    assert role_of("II") == role_of("ECG II") == role_of("mlii") == "ecg"
    assert role_of("PLETH") == role_of("PPG") == "ppg"
    assert role_of("ABP") == role_of("ART") == "abp"
    assert role_of("RESP") is None


def test_physionet_record_and_chunks():
    rec = read_record(record("f362s"))
    assert rec.channels[:1] == ("II",) and set(rec.roles) == {"ecg", "ppg", "abp"}
    assert rec.duration_s == pytest.approx(300.0)
    chunks = list(iter_chunks(rec, chunk_s=3.0))
    assert len(chunks) == 100 and chunks[1].t_start_s == 3.0
    assert all(len(c.signals["ecg"]) == 750 for c in chunks)


def test_record_without_ppg_names_record_and_channels():
    with pytest.raises(MissingChannelError) as err:
        read_record(MIMIC / "mimic2_s00001" / "3975656_0012")
    msg = str(err.value)
    assert "3975656_0012" in msg and "ppg" in msg and "II" in msg and "ABP" in msg


def test_multi_segment_header(tmp_path):
    # a master header over the two MIMIC-III segments (files linked, not copied)
    src = MIMIC / "mimic3_p000878"
    for name in ("3269321_0002",):
        for ext in (".hea", ".dat"):
            (tmp_path / f"{name}{ext}").symlink_to(src / f"{name}{ext}")
    (tmp_path / "3269321.hea").write_text("3269321/3 2 125 4750\n~ 1500\n3269321_0002 1750\n~ 1500\n")
    rec = read_record(tmp_path / "3269321")
    assert len(rec.segments) == 1 and rec.segments[0].t_start_s == pytest.approx(12.0)
    assert rec.duration_s == pytest.approx(26.0)
    assert [p.name for p in list_records([tmp_path])] == ["3269321"]


def test_list_records_filters_and_reports_missing():
    assert [p.name for p in list_records([PN2015], ["a555l", "f362s"])] == ["a555l", "f362s"]
    assert len(list_records([PN2015])) == 124
    with pytest.raises(Exception, match="nope"):
        list_records([PN2015], ["nope"])
