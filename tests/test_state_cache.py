"""The worker's decoded states are bounded (``BPSTREAM_STATE_CACHE_PATIENTS``): a flood of patient ids cannot grow
its memory without end, dropping a cached state changes nothing it sends or writes, and a state newer than the
table (deferred) or holding chunks behind a gap is never dropped."""

from __future__ import annotations

import pytest

from bpstream.stream.config._settings import Settings, SettingsError
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.kafka._agents import Item, Processor
from bpstream.stream.kafka._codec import encode_waveform
from bpstream.stream.kafka._state_cache import StateCache
from bpstream.stream.records._records import iter_chunks, read_record

from ._data import record

T0 = 1_780_000_000.0
WAVES = "bp.waveforms.v1"
METHODS = ("carry_forward", "mean")


def test_the_least_recently_used_entry_goes_first_and_pinned_ones_stay():
    pinned = {b"p"}
    cache = StateCache(2, lambda k: k in pinned)
    cache[b"p"] = 1
    cache[b"a"] = 2
    cache[b"b"] = 3  # over the bound: "p" is the oldest but pinned, "a" goes
    assert list(cache) == [b"p", b"b"] and cache.evicted == 1
    assert cache.get(b"p") == 1  # used: now the newest
    cache[b"c"] = 4
    assert list(cache) == [b"p", b"c"] and cache.get(b"b") is None
    pinned |= {b"c", b"d"}
    cache[b"d"] = 5  # everything else pinned: the bound gives way, nothing pinned is dropped
    assert set(cache) == {b"p", b"c", b"d"}
    pinned.clear()
    cache[b"e"] = 6
    assert list(cache) == [b"d", b"e"]  # the two oldest gone


def test_settings_refuse_an_empty_cache():
    with pytest.raises(SettingsError, match="STATE_CACHE_PATIENTS"):
        Settings(state_cache_patients=0).validated()


@pytest.fixture(scope="module")
def chunks():
    return list(iter_chunks(read_record(record("f362s")), 2.0, t0_s=T0))[:12]


def _run(cache_patients: int, chunks, every: int = 1):
    settings = Settings(methods=METHODS, state_every_chunks=every, state_cache_patients=cache_patients)
    proc = Processor(settings, Pipeline(PipelineConfig(methods=METHODS, arterial_schedule=Schedule.parse("once"))),
                     clock=lambda: T0 + 100)
    table, sends, sizes = {}, [], []
    for seq, chunk in enumerate(chunks):
        for p in range(6):  # six patients in turn, more than the cache holds
            key = f"p-{p}".encode()
            item = Item(WAVES, 0, seq, key, encode_waveform(key.decode(), seq, chunk), table.get(key))
            result = proc.process_batch([item])[0]
            if result.new_state is not None:
                table[key] = result.new_state
            sends.append(result.sends)
            sizes.append(len(proc._cache))
    return proc, table, sends, sizes


def test_a_bounded_cache_changes_nothing_sent_or_written(chunks):
    ref, ref_table, ref_sends, ref_sizes = _run(100, chunks)
    proc, table, sends, sizes = _run(2, chunks)
    assert max(ref_sizes) == 6 and max(sizes) == 2 and proc._cache.evicted > 0
    assert sends == ref_sends and table == ref_table


def test_deferred_states_are_never_dropped(chunks):
    """K = 4: every patient's state in memory is ahead of the table most of the time; dropping one would lose it."""
    ref, ref_table, ref_sends, _ = _run(100, chunks, every=4)
    proc, table, sends, sizes = _run(2, chunks, every=4)
    assert sends == ref_sends and table == ref_table
    assert max(sizes) > 2  # the bound gave way to the deferred patients
    assert {k for k in proc._cache} >= set(proc._dirty)
