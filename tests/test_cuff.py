"""Calibration readings: plausibility and future readings (``filters.cuff_reference``, the one cuff path: the
step's ``Gates.cuff`` calls it); real MIMIC cuff numerics. Pairing with a window, staleness against the
patient's history and duplicate command ids are the step's: tests/test_step.py and tests/test_order_commands.py."""

from __future__ import annotations

import glob
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bpstream.filters import CuffReading, Reason, Reference, cuff_plausibility, cuff_reference

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


def test_future_and_not_finite():
    r = CuffReading("c1", t_s=1000.0, sbp_mmhg=110, dbp_mmhg=60, map_mmhg=77)
    assert cuff_reference(r, stream_t_s=1005.0).usable
    assert cuff_reference(r, stream_t_s=1000.0 - 600).usable  # up to the horizon ahead: waits for its window
    assert cuff_reference(r, stream_t_s=1000.0 - 601).reasons == (Reason.CUFF_FUTURE,)
    assert cuff_reference(r, stream_t_s=1000.0 - 11, max_future_s=10.0).reasons == (Reason.CUFF_FUTURE,)
    assert cuff_reference(r, stream_t_s=None).usable  # no stream yet: nothing is in the future
    assert cuff_reference(CuffReading("c2", float("nan"), 110, 60), stream_t_s=10.0).reasons == (Reason.CUFF_STALE,)
    ok = cuff_reference(r, stream_t_s=1100.0)
    assert (ok.sbp_mmhg, ok.dbp_mmhg, ok.map_mmhg, ok.source, ok.t_s) == (110.0, 60.0, 77.0, "cuff", 1000.0)
    art = cuff_reference(CuffReading("c3", 5.0, 131, 70, None, source="arterial"), stream_t_s=5.0)
    assert art.usable and art.source == "arterial" and art.map_mmhg is None  # no MAP invented
    bad = cuff_reference(CuffReading("c4", 5.0, 300, 70), stream_t_s=-1e9)
    assert bad.reasons == (Reason.CUFF_IMPLAUSIBLE, Reason.CUFF_FUTURE) and bad.sbp_mmhg is None


def test_the_step_rejects_with_the_same_reasons():
    """Gates.cuff (the step's) is cuff_reference: its first reason, or the label."""
    from bpstream.stream.core import Calibrate, Gates

    g = Gates()
    for cmd, t in [(Calibrate("a", 100.0, 120, 80, 93), 90.0), (Calibrate("b", 100.0, 120, 80, 125), 90.0),
                   (Calibrate("c", 1000.0, 120, 80), 90.0), (Calibrate("d", float("inf"), 120, 80), 90.0)]:
        label, reason = g.cuff(cmd, t, 600.0)
        ref = cuff_reference(CuffReading(cmd.command_id, cmd.measured_at_s, cmd.sbp_mmhg, cmd.dbp_mmhg, cmd.map_mmhg),
                             stream_t_s=t, max_future_s=600.0)
        assert (label, reason) == ((ref, None) if ref.usable else (None, ref.reasons[0]))


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
    refs = [cuff_reference(CuffReading(f"s1-{i}", i * dt, *row), stream_t_s=i * dt + 30.0) for i, row in enumerate(rows)]
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
    r = cuff_reference(CuffReading(cid, t, sbp, dbp, mp), stream_t_s=now)
    assert isinstance(r, Reference) and (r.usable or r.reasons)
    assert all(isinstance(q, Reason) for q in r.reasons)
    if r.usable:
        assert 40 <= r.sbp_mmhg <= 260 and 20 <= r.dbp_mmhg <= 160
