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


def test_training_arrays_and_the_quality_report_read_the_steps_own_windows():
    """One record loop: dataset rows are the step's windows whose label passed (validate's references), and
    the quality report counts the step's input verdicts."""
    import numpy as np

    from bpstream.stream.cli.quality import record_quality
    from bpstream.stream.core import Pipeline, PipelineConfig, WindowResult
    from bpstream.stream.records import iter_outputs, read_record
    from bpstream.stream.records._dataset import record_arrays

    path = record("a555l")
    results = [r for r in iter_outputs(Pipeline(PipelineConfig(methods=("carry_forward",), keep_windows=True)),
                                       read_record(path, roles=("ecg", "ppg", "abp"), required=("ecg", "ppg")))
               if isinstance(r, WindowResult)]
    labelled = [r for r in results if r.reference is not None and r.reference.usable
                and None not in (r.reference.sbp_mmhg, r.reference.dbp_mmhg, r.reference.map_mmhg)  # not MAP-only
                and np.isfinite(r.window.ecg).all() and np.isfinite(r.window.ppg).all()]  # what training can use
    arrays = record_arrays(path)
    assert len(arrays["t_s"]) == len(labelled) > 50
    assert np.allclose(arrays["t_s"], [np.float32(r.t_end_s) for r in labelled])
    assert np.allclose(arrays["y"][:, 0], [r.reference.sbp_mmhg for r in labelled])
    assert arrays["input_usable"].tolist() == [r.input_usable for r in labelled]
    q = record_quality(path, hop_s=2.0)
    assert (q.windows, q.input_rejected) == (len(results), sum(not r.input_usable for r in results))
