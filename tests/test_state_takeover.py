"""Chunks held behind a missing seq: never written while held (their messages stay unacknowledged), written whole
when something must be written at once; and what a worker taking a partition over restores must be what the old
worker had in memory: the table's newest
state, then every message from each input topic's first unacknowledged offset (faust commits the acknowledged
prefix), stepped again. Driven through the worker's Processor with the agent's bookkeeping (pending messages,
acknowledged when their patient's state is written, and the timer's writes; stream/kafka/_agents.py), with lost
and swapped chunks (the reorder buffer holds chunks), commands, and rebalances (every deferred state written).

The sequences of the audit of 2026-12-07 that lost held chunks or diverged before the fix are the first tests."""

from __future__ import annotations

import random

import pytest

from bpstream.stream.core._messages import Calibrate
from bpstream.stream.core._state_codec import state_from_bytes, state_to_bytes
from bpstream.stream.kafka._agents import Item, Processor
from bpstream.stream.kafka._codec import dumps, encode_waveform
from bpstream.stream.kafka._schemas import command_doc

from .test_state_writes import COMMANDS, T0, WAVES, _proc, _run, _waves, chunks  # noqa: F401 - chunks: the fixture


class _Agent:
    """The agent's table, pending and acknowledged messages around a Processor (as in _agents.handle/written/
    settle/write_states)."""

    def __init__(self, proc: Processor):
        self.p, self.table, self.pending, self.acked, self.log = proc, {}, {}, set(), []
        self.offset = {WAVES: 0, COMMANDS: 0}

    def send(self, *values) -> None:
        items = []
        for topic, key, value in values:
            items.append(Item(topic, 0, self.offset[topic], key, value, self.table.get(key)))
            self.log.append((topic, self.offset[topic], key, value))
            self.offset[topic] += 1
        covered = []
        for item, r in zip(items, self.p.process_batch(items)):
            if r.new_state is not None:
                self.table[item.key] = r.new_state
                covered.append(item.key)
            if r.deferred:
                self.pending.setdefault(item.key, []).append((item.topic, item.offset))
            else:
                self.acked.add((item.topic, item.offset))
        for key in covered:
            self._written(key)
        self._settle()

    def _written(self, key) -> None:
        if not self.p.deferred(key):
            self.acked.update(self.pending.pop(key, []))

    def _settle(self) -> None:
        for key in [k for k in self.pending if not self.p.deferred(k)]:
            self._written(key)

    def timer(self, everything: bool = False) -> None:
        for key in self.p.stale(0.0 if everything else 5.0):
            new = self.p.write(key, everything)
            if new is not None and self.pending.get(key):
                self.table[key] = new
                self._written(key)
        self._settle()

    def takeover(self) -> dict:
        """Every patient's state on a fresh worker: the table, then the unacknowledged suffix of each topic."""
        q = _proc(1)
        first: dict = {}
        for topic, off, _, _ in self.log:
            if (topic, off) not in self.acked and topic not in first:
                first[topic] = off
        states = {k: state_from_bytes(v, q.pipeline) for k, v in self.table.items()}
        for topic, off, key, value in self.log:
            if topic in first and off >= first[topic]:
                states[key], _ = q.pipeline.step(states.get(key), q._decode(Item(topic, 0, off, key, value))[0])
        return states

    def same_as_memory(self) -> bool:
        restored = self.takeover()
        return all(state_to_bytes(restored[k]) == state_to_bytes(s) for k, (_, s) in self.p._cache.items())


def _wave(chunks, seq: int, key: str = "p-1", chunk: int | None = None):
    return WAVES, key.encode(), encode_waveform(key, seq, chunks[seq if chunk is None else chunk])


def _cal(cid: str = "cuff-1", key: str = "p-1"):
    return COMMANDS, key.encode(), dumps(command_doc(key, Calibrate(cid, T0 + 9.0, 140.0, 85.0), T0 + 10))


def test_held_chunks_written_at_a_rebalance_are_not_lost_by_a_later_command(chunks):
    """Seq 5 lost, 6-8 held; a rebalance (the partition stays) writes them whole and acknowledges them; then a
    command. Writing the command's state without held chunks lost 6-8 on takeover."""
    a = _Agent(_proc(1))
    a.send(*[_wave(chunks, i) for i in range(5)])
    for i in (6, 7, 8):
        a.send(_wave(chunks, i))
    assert a.p.deferred(b"p-1") and a.same_as_memory()
    a.timer(everything=True)
    assert not a.p.deferred(b"p-1") and not a.pending
    a.send(_cal())
    assert [h[0] for h in a.takeover()[b"p-1"].held] == [6, 7, 8] and a.same_as_memory()


def test_a_far_ahead_seq_while_chunks_are_held_restores_as_it_was(chunks):
    """Gaps at 4 and 6 (5, 7 held), a far-ahead seq, 4 fills the first gap, then a command: the restored state
    (including the far-ahead run) is the one in memory."""
    a = _Agent(_proc(1))
    a.send(*[_wave(chunks, i) for i in range(4)])
    for seq, idx in ((5, 5), (7, 7), (2000, 8), (4, 4)):
        a.send(_wave(chunks, seq, chunk=idx))
    a.send(_cal())
    assert a.same_as_memory()


def _scenario(chunks, seed: int) -> list:
    """Four patients interleaved: a lost chunk (most), neighbours swapped, a few commands."""
    rnd = random.Random(seed)
    streams = []
    for p in range(4):
        key = f"p-{p}"
        seqs = list(range(20))
        if rnd.random() < 0.8:
            seqs.remove(rnd.randrange(2, 10))
        for i in range(len(seqs) - 1):
            if rnd.random() < 0.2:
                seqs[i], seqs[i + 1] = seqs[i + 1], seqs[i]
        stream = [_wave(chunks, s, key) for s in seqs]
        for _ in range(rnd.randrange(0, 3)):
            stream.insert(rnd.randrange(1, len(stream)), _cal(f"c-{p}-{rnd.random()}", key))
        streams.append(stream)
    out = []
    while any(streams):
        out.append(rnd.choice([s for s in streams if s]).pop(0))
    return out


@pytest.mark.parametrize("every", [1, 3])
def test_a_takeover_at_any_point_restores_what_memory_had(chunks, every):
    diverged = []
    for seed in range(25):
        messages, rnd = _scenario(chunks, seed), random.Random(seed + 1000)
        a, i = _Agent(_proc(every)), 0
        while i < len(messages):
            n = rnd.randrange(1, 5)
            a.send(*messages[i : i + n])
            i += n
            if rnd.random() < 0.15:
                a.timer(everything=True)  # a rebalance (or a stop)
            if rnd.random() < 0.3 and not a.same_as_memory():
                diverged.append((seed, i))
        a.timer(everything=True)
        assert not a.pending and all(not a.p.deferred(k) for k in a.table)  # nothing left unacknowledged
    assert not diverged


def test_chunks_held_behind_a_gap_are_never_written_and_their_messages_stay_unacknowledged(chunks):
    """Seq 5 lost; 6-8 held (2-s chunks: 6 s of the 10-s reorder buffer). Even at K = 1 nothing is written while
    they are held (their messages stay unacknowledged; the state rebuilt from the table and them is the one in
    memory); the age timer leaves it; a rebalance or stop writes it whole, and so does a command."""
    proc = _proc(1)
    values = _waves(chunks[:5]) + _waves(chunks[6:9], start=6)
    _, results, table, _ = _run(proc, values)
    assert [r.new_state is not None for r in results] == [True] * 5 + [False] * 3
    assert [r.deferred for r in results] == [False] * 5 + [True] * 3
    assert state_from_bytes(table[b"p-1"], proc.pipeline).last_seq == 4
    memory = proc._cache[b"p-1"][1]
    assert [h[0] for h in memory.held] == [6, 7, 8] and proc.deferred(b"p-1")
    rebuilt = state_from_bytes(table[b"p-1"], proc.pipeline)  # what a worker taking over rebuilds
    for value in values[5:]:
        rebuilt, _ = proc.pipeline.step(rebuilt, proc._decode(Item(value[0], 0, 0, value[1], value[2]))[0])
    assert state_to_bytes(rebuilt) == state_to_bytes(memory)
    assert proc.write(b"p-1") is None and proc.deferred(b"p-1")  # the age timer leaves it alone ...
    whole = proc.write(b"p-1", everything=True)  # ... a rebalance or stop writes it whole
    assert [h[0] for h in state_from_bytes(whole, proc.pipeline).held] == [6, 7, 8] and not proc.deferred(b"p-1")
    # a command while chunks are held is written at once, whole, and ends the deferral
    proc = _proc(1)
    _, results, table, _ = _run(proc, values + [_cal()])
    assert results[-1].new_state is not None and not results[-1].deferred and not proc.deferred(b"p-1")
    written = state_from_bytes(table[b"p-1"], proc.pipeline)
    assert [h[0] for h in written.held] == [6, 7, 8] and written.seen_commands


def test_the_gap_given_up_writes_the_whole_state_and_releases_the_messages(chunks):
    proc = _proc(1)
    values = _waves(chunks[:5]) + _waves(chunks[6:13], start=6)  # 6..11 is 12 s held: seq 5 is given up
    _, results, table, _ = _run(proc, values)
    given_up = next(i for i, r in enumerate(results) if i >= 5 and r.new_state is not None)
    assert given_up == 10 and all(r.deferred for r in results[5:10]) and not results[10].deferred
    assert not proc.deferred(b"p-1")
    state = state_from_bytes(table[b"p-1"], proc.pipeline)
    assert state.held == [] and state.last_seq == 12
    _, ref_results, _, _ = _run(_proc(1), values)  # the same outputs as ever: only the writes moved
    assert [r.sends for r in results] == [r.sends for r in ref_results]
