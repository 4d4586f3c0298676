"""VitalDB input: ``.vital`` files written with vitaldb's own writer (``VitalFile.add_track`` /
``to_vital``) from PhysioNet records in ../shared/data (nothing is kept: the files live in tmp_path),
read back through ``bpstream.stream.records._records`` and run through validate, demo and replay.

Tolerance: a .vital waveform track stores float32 samples, so the samples read back equal the WFDB
record's physical values rounded to float32 (exactly), and validate gives the same windows, the same
validity and rejections, and estimates/references within 1e-3 mmHg of the WFDB record's (measured:
8e-6 mmHg on f362s).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from bpstream.stream.kafka._codec import decode_waveform
from bpstream.stream.core._errors import MissingChannelError
from bpstream.stream.records._records import iter_chunks, list_records, read_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.config._settings import Settings
from bpstream.stream.cli import main

from ._data import PN2015, record

vitaldb = pytest.importorskip("vitaldb", reason="vitaldb is a dependency of bpstream: reinstall the package")
wfdb = pytest.importorskip("wfdb")

T0 = 1_780_000_000.0  # the file's start (epoch seconds)
TRACKS = {"II": "SNUADC/ECG_II", "PLETH": "SNUADC/PLETH", "ABP": "SNUADC/ART"}
TOL_MMHG = 1e-3


def _wfdb(name: str):
    path = PN2015 / name
    if not path.with_suffix(".hea").exists():
        pytest.skip(f"shared data missing: {path}.hea (tests read ../shared/data beside the checkout)")
    return wfdb.rdrecord(str(path))


def write_vital(name: str, out: Path, *, tracks=TRACKS, every: dict[str, int] | None = None,
                duration_s: float | None = None, gap_s: tuple[float, float] | None = None) -> dict[str, np.ndarray]:
    """A PhysioNet record as a .vital file: one waveform track per mapped channel, in 1-s records (as a
    monitor writes them; ``packed=False`` keeps them so), ``every[channel]`` decimates that channel, ``gap_s``
    leaves a stretch unrecorded. Returns what was written per track (float32, at the track's rate)."""
    rec = _wfdb(name)
    vf = vitaldb.VitalFile()
    n_s = rec.p_signal.shape[0] / rec.fs if duration_s is None else duration_s
    vf.dtstart, vf.dtend = T0, T0 + n_s
    written = {}
    for i, channel in enumerate(rec.sig_name):
        if channel not in tracks:
            continue
        step = (every or {}).get(channel, 1)
        fs = rec.fs / step
        x = rec.p_signal[: int(round(n_s * rec.fs)), i][::step].astype(np.float32)
        blocks = [{"dt": T0 + k, "val": x[int(k * fs):int((k + 1) * fs)]} for k in range(int(np.ceil(len(x) / fs)))]
        if gap_s:
            blocks = [b for b in blocks if not gap_s[0] <= b["dt"] - T0 < gap_s[1]]
        vf.add_track(tracks[channel], blocks, srate=fs, unit=rec.units[i])
        written[tracks[channel]] = x
    assert vf.to_vital(str(out), packed=False) is not False
    return written


def test_vital_samples_round_trip(tmp_path):
    written = write_vital("f362s", tmp_path / "f362s.vital")
    rec = read_record(tmp_path / "f362s")  # the base path, as list_records gives it
    assert rec.name == "f362s" and rec.channels == ("SNUADC/ECG_II", "SNUADC/PLETH", "SNUADC/ART")
    assert set(rec.roles) == {"ecg", "ppg", "abp"} and rec.duration_s == pytest.approx(300.0)
    (seg,) = rec.segments
    for role, track in (("ecg", "SNUADC/ECG_II"), ("ppg", "SNUADC/PLETH"), ("abp", "SNUADC/ART")):
        assert seg.fs_hz[role] == 250.0
        np.testing.assert_array_equal(seg.signals[role], written[track].astype(np.float64))
    same = read_record(tmp_path / "f362s.vital")  # the file's own name reads the same
    np.testing.assert_array_equal(same.segments[0].signals["ecg"], seg.signals["ecg"])
    wfdb_rec = read_record(PN2015 / "f362s")
    for role in ("ecg", "ppg", "abp"):
        np.testing.assert_allclose(seg.signals[role], wfdb_rec.segments[0].signals[role], rtol=1e-6, atol=1e-5)


def test_tracks_keep_their_own_rates_and_gaps_read_as_missing(tmp_path):
    write_vital("f362s", tmp_path / "f362s.vital", every={"PLETH": 2}, gap_s=(20.0, 24.0))
    rec = read_record(tmp_path / "f362s")
    seg = rec.segments[0]
    assert seg.fs_hz == {"ecg": 250.0, "ppg": 125.0, "abp": 250.0}
    assert len(seg.signals["ecg"]) == 75000 and len(seg.signals["ppg"]) == 37500
    assert np.isnan(seg.signals["ecg"][20 * 250:24 * 250]).all() and np.isfinite(seg.signals["ecg"][:20 * 250]).all()
    chunk = next(iter(iter_chunks(rec, 2.0)))
    assert len(chunk.signals["ecg"]) == 500 and len(chunk.signals["ppg"]) == 250


def test_vital_file_missing_a_track_is_the_same_error_as_a_wfdb_record(tmp_path, capsys):
    write_vital("f362s", tmp_path / "nopleth.vital", tracks={"II": "SNUADC/ECG_II", "ABP": "SNUADC/ART"})
    with pytest.raises(MissingChannelError) as err:
        read_record(tmp_path / "nopleth")
    assert err.value.record == "nopleth" and err.value.missing == ("ppg",)
    assert err.value.channels == ("SNUADC/ECG_II", "SNUADC/ART")
    assert main(["validate", str(tmp_path / "nopleth.vital"), "--methods", "carry_forward"]) == 1
    message = capsys.readouterr().err
    assert "nopleth" in message and "ppg" in message and "SNUADC/ART" in message


def test_a_damaged_vital_file_is_a_record_error(tmp_path, capsys):
    (tmp_path / "bad.vital").write_bytes(b"not a gzip stream")
    assert main(["validate", str(tmp_path / "bad.vital"), "--methods", "carry_forward"]) == 1
    assert "cannot read VitalDB file" in capsys.readouterr().err


def _validate(path: Path, out: Path, *extra: str) -> tuple[dict, list[dict]]:
    rc = main(["validate", str(path), *extra, "--methods", "carry_forward,fusion", "--calibration", "every:60",
               "--json", str(out / "v.json"), "--windows", str(out / "w.csv")])
    assert rc == 0
    with open(out / "w.csv", newline="") as f:
        return json.loads((out / "v.json").read_text()), list(csv.DictReader(f))


def test_validate_on_a_vital_file_gives_the_wfdb_records_windows_and_estimates(tmp_path):
    (tmp_path / "vital").mkdir()
    (tmp_path / "wfdb").mkdir()
    write_vital("f362s", tmp_path / "vital" / "f362s.vital")
    assert [p.name for p in list_records([tmp_path / "vital"])] == ["f362s"]
    doc_v, rows_v = _validate(tmp_path / "vital", tmp_path / "vital")
    doc_w, rows_w = _validate(PN2015, tmp_path / "wfdb", "--records", "f362s")
    assert doc_v["records"] == doc_w["records"] == 1
    assert doc_v["windows"] == doc_w["windows"] > 100 and doc_v["rejected"] == doc_w["rejected"]
    assert len(rows_v) == len(rows_w) == 2 * doc_w["windows"]
    numeric = [k for k in rows_w[0] if k.startswith(("ref_", "cal_", "est_", "sd_"))]
    assert "est_sbp" in numeric
    for v, w in zip(rows_v, rows_w):
        assert (v["record"], v["t_end_s"], v["method"], v["validity"]) == (w["record"], w["t_end_s"], w["method"], w["validity"])
        for k in numeric:
            assert (v[k] == "") == (w[k] == "")
            if w[k]:
                assert float(v[k]) == pytest.approx(float(w[k]), abs=TOL_MMHG), (w["t_end_s"], w["method"], k)
    for method in ("carry_forward", "fusion"):
        for q in ("sbp", "dbp", "map"):
            assert doc_v["methods"][method][q]["mae"] == pytest.approx(doc_w["methods"][method][q]["mae"], abs=TOL_MMHG)


def test_demo_reads_a_folder_of_vital_files(tmp_path, capsys):
    write_vital("f362s", tmp_path / "case1.vital", duration_s=60.0)
    assert main(["demo", "--data", str(tmp_path), "--every", "10"]) == 0
    out = capsys.readouterr().out
    assert "case1" in out and "1 records" in out and "SBP" in out


def test_replay_publishes_a_vital_file_and_skips_its_gaps(tmp_path):
    from bpstream.stream.kafka._publish import _messages

    written = write_vital("f362s", tmp_path / "f362s.vital", duration_s=40.0, gap_s=(10.0, 14.0))
    settings = Settings()
    messages = list(_messages(tmp_path / "f362s", "pat-1", 0, settings, Schedule.parse("off"), T0, True, 0.0, None))
    waves = [decode_waveform(v) for _, _, topic, v in messages if topic == settings.topic_waveforms]
    assert [w.message.seq for w in waves] == list(range(len(waves)))  # no seq is skipped: the worker holds none
    starts = [w.message.chunk.t_start_s - T0 for w in waves]
    assert starts == [t for t in np.arange(0.0, 40.0, 2.0) if not 10.0 <= t < 14.0]  # the gap is not sent
    first = waves[0].message.chunk
    assert first.fs_hz["ecg"] == 250.0
    np.testing.assert_array_equal(first.signals["ecg"], written["SNUADC/ECG_II"][:500].astype(np.float64))


def test_replay_in_parts_numbers_chunks_as_one_whole_replay(tmp_path):
    """``--from``/``--to`` replay part of a record; the seq of each chunk is that of the whole replay (a
    second part starting again at 0 would be ignored as repeats by the worker), gaps or not."""
    from bpstream.stream.kafka._publish import _messages

    write_vital("f362s", tmp_path / "f362s.vital", duration_s=40.0, gap_s=(10.0, 14.0))
    settings = Settings()

    def seqs(t_from_s, t_to_s):
        msgs = _messages(tmp_path / "f362s", "pat-1", 0, settings, Schedule.parse("off"), T0, True, t_from_s, t_to_s)
        waves = [decode_waveform(v).message for _, _, topic, v in msgs if topic == settings.topic_waveforms]
        return [(w.seq, w.chunk.t_start_s) for w in waves]

    whole = seqs(0.0, None)
    assert seqs(0.0, 20.0) + seqs(20.0, None) == whole
    assert seqs(8.0, 30.0) == [m for m in whole if 8.0 <= m[1] - T0 < 30.0]
    # and for a WFDB record (int16 on the wire), the first chunk after 20 s has seq 10
    wf = _messages(record("f362s"), "pat-2", 0, settings, Schedule.parse("off"), T0, True, 20.0, 30.0)
    first = next(decode_waveform(v).message for _, _, topic, v in wf if topic == settings.topic_waveforms)
    assert first.seq == 10 and first.chunk.t_start_s == T0 + 20.0
