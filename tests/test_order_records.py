"""Order and pairing on a real record (a555l, ../shared/data): a replay with 2-s chunks shuffled within
blocks of 3 gives the in-order windows and estimates; a calibration command gives the same pairing and
later estimates whether it is read before or after its window (``ttt``, which learns on every window)."""

from __future__ import annotations

import pytest

from bpstream.stream.core._messages import Calibrate, ChunkMessage, DeadLetter, Event, EventKind, WindowResult
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.core._step import Pipeline, PipelineConfig

from ._data import record
from .test_order import _same, shuffle_in_blocks

METHODS = ("carry_forward", "ttt")


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)  # 2 shared cores: more threads only oversubscribe them
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def a555l():
    rec = read_record(record("a555l"), roles=("ecg", "ppg", "abp"), required=("ecg", "ppg"))
    return [ChunkMessage(i, c) for i, c in enumerate(iter_chunks(rec, 2.0))]


def _run(pipeline, messages):
    state, outs = None, []
    for m in messages:
        state, o = pipeline.step(state, m)
        outs.extend(o)
    return outs


def _windows(outs):
    return [o for o in outs if isinstance(o, WindowResult)]


def test_a555l_shuffled_within_blocks_of_3_equals_in_order(a555l):
    p = Pipeline(PipelineConfig(methods=METHODS, arterial_schedule=Schedule.parse("once")))
    ordered = _run(p, a555l)
    shuffled = _run(p, shuffle_in_blocks(a555l, 3, seed=10))
    assert shuffle_in_blocks(a555l, 3, seed=10) != a555l
    assert not [o for o in shuffled if isinstance(o, DeadLetter)]
    assert not [o for o in shuffled if isinstance(o, Event) and o.kind == EventKind.DUPLICATE_IGNORED]
    w_in, w_sh = _windows(ordered), _windows(shuffled)
    assert len(w_in) == 161 and any(w.labels for w in w_in)
    _same(w_sh, w_in, tol=1e-6)
    assert [w.seq for w in w_sh] == [w.seq for w in w_in]


@pytest.mark.parametrize("after", [0, 1, 2])  # (-1, the on-time arrival, is ``ref`` itself)
def test_a555l_calibration_pairing_does_not_depend_on_arrival(a555l, after):
    """The command is read one chunk before the chunk completing its window (as replay sends it), or
    ``after`` chunks after that chunk: same event, same window, same estimates once it has arrived."""
    p = Pipeline(PipelineConfig(methods=METHODS))
    on_time = _run(p, a555l[:20])
    t = next(w.t_end_s for w in _windows(on_time) if w.input_usable and w.t_end_s >= 28.0) - 1.0
    k = next(i for i, m in enumerate(a555l) if m.chunk.t_start_s + m.chunk.duration_s() >= t + 1.0 - 1e-9)
    cal = Calibrate("cuff-1", measured_at_s=t, sbp_mmhg=126.0, dbp_mmhg=71.0, map_mmhg=90.0)
    ref = _run(p, a555l[:k] + [cal] + a555l[k:])
    got = _run(p, a555l[: k + 1 + after] + [cal] + a555l[k + 1 + after :])
    ev = [(o.kind, o.t_s) for o in ref if isinstance(o, Event) and o.command_id == "cuff-1"]
    assert ev == [(o.kind, o.t_s) for o in got if isinstance(o, Event) and o.command_id == "cuff-1"]
    assert ev == [(EventKind.CALIBRATION_ACCEPTED, t + 1.0)]
    arrived = a555l[k + after].chunk.t_start_s + 2.0
    later = lambda ws: [w for w in ws if w.t_end_s > arrived]  # noqa: E731
    _same(later(_windows(got)), later(_windows(ref)), tol=1e-6)
    assert any(w.estimates["ttt"].sbp_mmhg is not None for w in later(_windows(got)))
