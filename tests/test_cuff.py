"""Cuff labels: plausibility, duplicates, stale/future readings, pairing with a window; real MIMIC cuff numerics."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpstream.filters import CuffFilter, CuffReading, Reason, Reference, cuff_plausibility, cuff_reference, pair_window

MIMIC = Path(__file__).resolve().parents[2] / "shared" / "data" / "mimic-samples"


@pytest.mark.parametrize(
    "sbp, dbp, mp, ok",
    [
        (120, 80, 93, True),
        (120, 80, None, True),
        (45, 25, 32, True),  # profound hypotension is a real reading
        (260, 160, 190, True),
        (39, 20, None, False),
        (261, 150, None, False),
        (120, 19, None, False),
        (200, 161, None, False),
        (100, 91, None, False),  # pulse pressure < 10
        (120, 80, 125, False),  # MAP above SBP
        (120, 80, 80, False),  # MAP not strictly between
        (float("nan"), 80, None, False),
        (120, float("inf"), None, False),
        (None, 80, None, False),
        ("abc", 80, None, False),
    ],
)
def test_plausibility(sbp, dbp, mp, ok):
    assert (cuff_plausibility(sbp, dbp, mp) == ()) is ok
    if not ok:
        assert cuff_plausibility(sbp, dbp, mp) == (Reason.CUFF_IMPLAUSIBLE,)


def test_stale_and_future():
    r = CuffReading("c1", t_s=1000.0, sbp_mmhg=110, dbp_mmhg=60, map_mmhg=77)
    assert cuff_reference(r, stream_t_s=1005.0).usable
    assert cuff_reference(r, stream_t_s=1000.0 + 301).reasons == (Reason.CUFF_STALE,)
    assert cuff_reference(r, stream_t_s=1000.0 - 11).reasons == (Reason.CUFF_FUTURE,)
    assert cuff_reference(r, stream_t_s=float("nan")).reasons == (Reason.CUFF_STALE,)
    ok = cuff_reference(r, stream_t_s=1100.0)
    assert (ok.sbp_mmhg, ok.dbp_mmhg, ok.map_mmhg, ok.source, ok.t_s) == (110.0, 60.0, 77.0, "cuff", 1000.0)


def test_pairing_with_windows():
    starts = np.arange(0.0, 100.0, 2.0)
    ends = starts + 10.0
    k = pair_window(55.0, starts, ends)
    assert starts[k] <= 55.0 <= ends[k] and abs(starts[k] + 5 - 55.0) <= 1.0
    assert pair_window(500.0, starts, ends) == -1
    assert pair_window(5.0, [], []) == -1
    r = CuffReading("c1", t_s=55.0, sbp_mmhg=110, dbp_mmhg=60)
    ref = cuff_reference(r, stream_t_s=60.0, window_start_s=starts, window_end_s=ends)
    assert ref.usable and ref.extras["window_index"] == float(k)
    ref = cuff_reference(r, stream_t_s=60.0, window_start_s=starts[:5], window_end_s=ends[:5])
    assert not ref.usable and ref.reasons == (Reason.CUFF_NO_WINDOW,)


def test_duplicates_and_state():
    f = CuffFilter()
    r = CuffReading("cmd-7", t_s=100.0, sbp_mmhg=110, dbp_mmhg=60)
    assert f.update(r, 100.0).usable
    again = f.update(r, 101.0)
    assert not again.usable and again.reasons == (Reason.CUFF_DUPLICATE,)
    g = CuffFilter.from_bytes(f.to_bytes())
    assert g.update(r, 102.0).reasons == (Reason.CUFF_DUPLICATE,)
    assert g.update(CuffReading("cmd-8", 100.0, 112, 61), 102.0).usable
    small = CuffFilter(remember=2)
    for i in range(3):
        small.update(CuffReading(f"id{i}", 100.0, 110, 60), 100.0)
    assert small.update(CuffReading("id0", 100.0, 110, 60), 100.0).usable  # forgotten after 2 newer ids
    assert len(small.to_bytes()) < 64
    for bad in (b"", b"abc", small.to_bytes()[:-1]):
        with pytest.raises(ValueError):
            CuffFilter.from_bytes(bad)


def _numerics(pattern: str):
    wfdb = pytest.importorskip("wfdb")
    heads = glob.glob(str(MIMIC / pattern))
    if not heads:
        pytest.skip("MIMIC samples not present")
    rec = wfdb.rdrecord(heads[0][:-4])
    cols = [rec.p_signal[:, rec.sig_name.index(c)] for c in ("NBPSys", "NBPDias", "NBPMean")]
    rows = np.stack(cols, axis=1)
    return rows[np.isfinite(rows).all(axis=1)], 1.0 / rec.fs


def test_real_mimic_cuff_readings():
    """Real cuff numerics: s00001 is a stable patient, s25047 has impossible rows (MAP > SBP, DBP < 20)."""
    rows, dt = _numerics("mimic2_s00001/*n.hea")
    f = CuffFilter()
    refs = [f.update(CuffReading(f"s1-{i}", i * dt, *row), i * dt + 30.0) for i, row in enumerate(rows)]
    assert np.mean([r.usable for r in refs]) >= 0.95
    rows, dt = _numerics("mimic2_s25047/*n.hea")
    bad = [cuff_plausibility(*row) for row in rows]
    assert 1 <= sum(bool(b) for b in bad) < len(rows)
    for row, b in zip(rows, bad):
        s, d, m = row
        if not (d < m < s) or d < 20:
            assert b == (Reason.CUFF_IMPLAUSIBLE,)


@settings(max_examples=200, deadline=None)
@given(
    sbp=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    dbp=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    mp=st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)),
    t=st.floats(allow_nan=True, allow_infinity=True),
    now=st.floats(allow_nan=True, allow_infinity=True),
    cid=st.text(max_size=20),
)
def test_never_raises(sbp, dbp, mp, t, now, cid):
    f = CuffFilter()
    r = f.update(CuffReading(cid, t, sbp, dbp, mp), now, [0.0], [10.0])
    assert isinstance(r, Reference) and (r.usable or r.reasons)
    assert all(isinstance(q, Reason) for q in r.reasons)
    if r.usable:
        assert 40 <= r.sbp_mmhg <= 260 and 20 <= r.dbp_mmhg <= 160
