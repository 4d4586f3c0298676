"""Per-patient chunk order: repeats, a bounded reorder buffer, given-up gaps, late and far-ahead chunks.

Pure bookkeeping on the patient state (``last_seq``, ``held``, ``late_ranges``, ``seq_run``,
``episode_prev``); the step applies the chunks ``admit`` hands back, in that order. The rules, with
``e`` the next expected seq (the last applied + 1):

- ``seq < e``, or ``seq`` already held: a repeat (at-least-once delivery) -> ``duplicate_ignored``;
  except a seq whose place was given up (below): that chunk came too late -> dead-letter ``msg_late``.
- ``seq == e``: applied at once, then every held chunk that now follows without a gap.
- ``e < seq <= e + seq_jump_max``: held (the reorder buffer) until the missing ones arrive. When the
  held chunks cover more than ``reorder_s`` of stream time (the sum of their durations) or number more
  than ``reorder_max_chunks``, the gap is given up: the lowest held chunk is applied (the seqs it
  skipped are remembered as given up) and the buffer drains again. So a lost or dead-lettered chunk
  delays the patient's windows by at most ``reorder_s`` of stream; it never stops them.
- ``seq > e + seq_jump_max``: far ahead -> dead-letter ``msg_seq_gap``; the stream goes on from ``e``.
  A real jump (a gateway that lost that many chunks, a renumbering monitor) is believed when
  ``seq_confirm`` consecutive seqs arrive far ahead: the last of them is taken as the new position
  (held chunks are applied first; the earlier ones of the run stay dead-lettered).
- Start of an episode (a new patient, or after ``reset``/``discharge``): seq 0, or the seq after the
  old episode's last, starts at once; any other first seq is held like a gap, so chunks reordered at
  the very start are put in order too. The far-ahead check measures from 0 (or the old episode's next
  seq). After reset/discharge, and for the whole new episode, a chunk with the seq and start time of one of
  the old episode's last ``_KEEP_APPLIED`` applied chunks is a redelivery of the old episode
  (``duplicate_ignored``); a seq the old episode gave up is late only for a chunk starting no later than the
  old episode's last; any other chunk belongs to the new episode, whatever its numbering (so a jumped or bogus
  old position can never block a reset or readmitted patient).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpstream.filters import Chunk, Reason

from ._messages import ChunkMessage, DeadLetter, Event, EventKind, Output

__all__ = ["admit", "flush", "close_episode"]

_KEEP_LATE_RANGES = 16  # given-up seq ranges remembered to tell a late chunk from a repeat
_KEEP_APPLIED = 32  # (seq, start time) of the last applied chunks: repeats of a closed episode


def _held_entry(seq: int, chunk: Chunk) -> list[Any]:
    """A held chunk as plain data (the state codec stores it without class names)."""
    return [int(seq), float(chunk.t_start_s), {r: float(f) for r, f in chunk.fs_hz.items()},
            {r: np.asarray(x) for r, x in chunk.signals.items()}]


def _chunk(entry: list[Any]) -> Chunk:
    return Chunk(float(entry[1]), dict(entry[2]), dict(entry[3]))


def _duration_s(entry: list[Any]) -> float:
    role = "ecg" if "ecg" in entry[3] else next(iter(entry[3]))
    return len(entry[3][role]) / float(entry[2][role])


def _episode_start(state) -> int:
    """Where a new episode's numbering is expected to go on (0 for a new patient)."""
    return 0 if state.episode_prev is None else int(state.episode_prev[0]) + 1


def _expected(state) -> int | None:
    return state.last_seq + 1 if state.last_seq >= 0 else None


def _in_late(state, seq: int) -> bool:
    return any(lo <= seq <= hi for lo, hi in state.late_ranges)


def _give_up(state, lo: int, head: int) -> None:
    if head > lo:
        state.late_ranges = (state.late_ranges + [[int(lo), int(head) - 1]])[-_KEEP_LATE_RANGES:]


def _over(state, config) -> bool:
    return len(state.held) > config.reorder_max_chunks or \
        sum(_duration_s(h) for h in state.held) > config.reorder_s + 1e-9


def _drain(state, config, force: bool = False) -> list[Chunk]:
    """Pop the held chunks that may be applied now (all of them with ``force``), in seq order."""
    ready: list[Chunk] = []
    while state.held:
        head = int(state.held[0][0])
        e = _expected(state)
        ok = head == e if e is not None else head in (0, _episode_start(state))
        if not ok and (force or _over(state, config)):
            if e is not None:
                _give_up(state, e, head)
            else:
                start = _episode_start(state)
                _give_up(state, start if head >= start else 0, head)
            ok = True
        if not ok:
            break
        entry = state.held.pop(0)
        _applied(state, head, entry[1])
        ready.append(_chunk(entry))
    return ready


def _applied(state, seq: int, t_start_s: float) -> None:
    state.last_seq = int(seq)
    state.recent = (state.recent + [[int(seq), float(t_start_s)]])[-_KEEP_APPLIED:]


def _old_episode(state, s: int, chunk: Chunk) -> bool:
    """Whether the chunk is one of the closed episode's last applied chunks (same seq and start time): a
    redelivery from before the reset or discharge, whenever it comes (the old episode's numbers are kept for
    the whole new episode, so a redelivered old chunk never takes a new chunk's place)."""
    return state.episode_prev is not None and any(
        s == q and abs(chunk.t_start_s - t) < 1e-6 for q, t in state.episode_prev[1])


def _late_in_old_episode(state, s: int, chunk: Chunk) -> bool:
    """A new episode's first chunks are judged late only as the old episode's: a seq in an old given-up range
    that starts no later than the old episode's last applied chunk."""
    if not _in_late(state, s):
        return False
    last = [t for _, t in state.episode_prev[1]] if state.episode_prev is not None else []
    return not last or chunk.t_start_s <= max(last) + 1e-6


def admit(state, msg: ChunkMessage, config, t_s: float | None) -> tuple[list[Chunk], list[Output]]:
    """Decide what ``msg`` does to the patient's stream: the chunks to apply now (in order) and any
    event or dead-letter output. ``t_s``: the stream time for events (the newest window end)."""
    s, chunk = int(msg.seq), msg.chunk
    e = _expected(state)
    held = {int(h[0]) for h in state.held}
    if _old_episode(state, s, chunk):
        return [], [Event(EventKind.DUPLICATE_IGNORED, t_s, detail={"seq": s})]
    if s in held or (e is not None and s < e):
        if s not in held and _in_late(state, s):
            return [], [DeadLetter(Reason.MSG_LATE, "the seq arrived after its place in the stream was given up")]
        return [], [Event(EventKind.DUPLICATE_IGNORED, t_s, detail={"seq": s})]
    if e is None and _late_in_old_episode(state, s, chunk):
        return [], [DeadLetter(Reason.MSG_LATE, "the seq arrived after its place in the stream was given up")]
    ref = e if e is not None else _episode_start(state)
    if s > ref + config.seq_jump_max:
        run = state.seq_run
        count = run[1] + 1 if run is not None and s == run[0] + 1 else 1
        if count < config.seq_confirm:
            state.seq_run = [s, count]
            return [], [DeadLetter(Reason.MSG_SEQ_GAP, f"the seq jumps more than {config.seq_jump_max} ahead of the "
                                   f"stream (believed after {config.seq_confirm} in a row)")]
        state.seq_run = None
        ready = _drain(state, config, force=True)
        _give_up(state, _expected(state) if state.last_seq >= 0 else ref, s)
        _applied(state, s, chunk.t_start_s)
        return ready + [chunk], []
    state.seq_run = None
    state.held = sorted(state.held + [_held_entry(s, chunk)], key=lambda h: h[0])
    return _drain(state, config), []


def flush(state, config) -> list[Chunk]:
    """Every held chunk, gaps given up, in seq order (before a reset or discharge acts)."""
    return _drain(state, config, force=True)


def close_episode(state, fresh) -> None:
    """Carry the order bookkeeping of ``state`` into ``fresh`` (a reset or discharged state)."""
    if state.last_seq >= 0:
        fresh.episode_prev = [int(state.last_seq), list(state.recent)]
    else:
        fresh.episode_prev = state.episode_prev
    fresh.late_ranges = list(state.late_ranges)
