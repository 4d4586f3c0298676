"""State written when it matters, not on every chunk (``BPSTREAM_STATE_EVERY_CHUNKS`` = K): a patient's state
goes to the table (and its changelog) when K of its messages have changed it since the last write, when a
command or a newly accepted calibration changed it, after a flush, or when the agent's timer finds the
oldest unwritten change older than ``BPSTREAM_STATE_MAX_AGE_S`` (``stale``/``write``). Until then its
messages' results say ``deferred``: the agent keeps those messages unacknowledged, so the consumer commits
input offsets only up to what written states cover, and a worker that takes the partition over restores
the last written state and replays exactly the messages after it (the step ignores a repeat by its seq).

Chunks held behind a missing seq (the reorder buffer, up to ``BPSTREAM_REORDER_S`` of samples) are not
written in the table: a patient holding chunks stays deferred whatever K, so their messages stay
unacknowledged input, and a worker that takes over gets them again by replay. What must be written at once
is written whole, held chunks included, and ends the deferral: a command or a new calibration (rare while a
gap is open), and every deferred state while the group rebalances or the worker stops (``everything``), so
that no message stays unacknowledged when a partition is given up. (Writing such a state without its held
chunks instead would lose held chunks already in the table, and its rebuild would step applied messages
again as repeats: both found by an audit, so states are only ever written whole.)

``DeferredWrites`` is that half of the worker's ``Processor`` (a mixin over its state cache, counts and
decoder), kept in its own module.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

from bpstream.stream.core import PatientState, state_from_bytes, state_to_bytes

from ._logs import where

__all__ = ["DeferredWrites", "Dirty"]

log = logging.getLogger("bpstream.worker")


@dataclass
class Dirty:
    """A patient whose state in memory is ahead of the table."""

    base: bytes | None  # the table's bytes (what table.get returns) the in-memory state grew from
    changes: int  # messages that changed it since that write
    since: float  # monotonic time of the first unwritten change
    items: list = field(default_factory=list)  # those messages (Items), to rebuild the state if a batch fails midway


class DeferredWrites:
    """The Processor's deferred state writes (uses its ``settings``, ``pipeline``, ``counts``, ``_cache``,
    ``_dirty`` and ``_decode``)."""

    def _keep(self, key: bytes, state: PatientState, table_bytes: bytes | None, changed: list,
              urgent: bool) -> bytes | None:
        """A patient's state after a batch changed it (``changed``: its Items that did): the bytes to write on its
        last message of the batch, or None when the write is deferred (see the module docstring).
        ``table_bytes``: the table's value the batch was given for the patient."""
        dirty = self._dirty.get(key)
        changes = (dirty.changes if dirty else 0) + len(changed)
        if urgent or (changes >= self.settings.state_every_chunks and not state.held):
            new = state_to_bytes(state)
            self._cache[key] = (new, state)
            self._dirty.pop(key, None)
            self.counts["state:written"] += 1
            return new
        if dirty is None:
            dirty = self._dirty[key] = Dirty(table_bytes, 0, time.monotonic())
        dirty.changes = changes
        dirty.items += changed
        self._cache[key] = (dirty.base, state)  # the table still holds ``base``; the state in memory is newer
        self.counts["state:deferred"] += len(changed)
        return None

    def _snapshot(self, keys) -> dict:
        """The deferred bookkeeping of ``keys`` as it is now, for ``_forget`` after a failed step."""
        return {k: replace(self._dirty[k], items=list(self._dirty[k].items)) for k in keys if k in self._dirty}

    def _forget(self, key: bytes, snapshot: dict) -> None:
        """After a failed step: drop the patient's cached state (the step may have changed its objects), put its
        deferred bookkeeping back as in ``snapshot`` (a batch can fail after another of its patients was kept),
        and rebuild a deferred state from the table and its unwritten messages: never dropped, it is not in the
        table."""
        self._cache.pop(key, None)
        if key in snapshot:
            self._dirty[key] = snapshot[key]
        else:
            self._dirty.pop(key, None)
        if key in self._dirty:
            self._rebuild(key)

    def _rebuild(self, key: bytes) -> None:
        """A deferred patient's state again, from the table's bytes and its unwritten messages (their outputs
        were sent already); if even that fails, the patient goes on from the table's state."""
        dirty = self._dirty[key]
        try:
            state = state_from_bytes(dirty.base, self.pipeline) if dirty.base is not None else self.pipeline.new_state()
            for item in dirty.items:
                state, _ = self.pipeline.step(state, self._decode(item)[0])
            self._cache[key] = (dirty.base, state)
        except Exception as exc:  # noqa: BLE001
            log.error("rebuilding a deferred patient state failed (%s); it goes on from the stored state", where(exc))
            self._dirty.pop(key, None)

    def stale(self, max_age_s: float) -> list[bytes]:
        """Patients whose oldest unwritten change is at least ``max_age_s`` (wall) old (all: ``max_age_s=0``)."""
        now = time.monotonic()
        return [k for k, d in self._dirty.items() if now - d.since >= max_age_s]

    def deferred(self, key: bytes) -> bool:
        """Whether the patient's state in memory is ahead of the table (its messages must stay unacknowledged).
        False once it is written, and also when the table moved on without us (another worker wrote a state
        that covers those messages) or a rebuild failed: the agent then acknowledges them (``settle``)."""
        return key in self._dirty

    def unwritten(self) -> int:
        """How many patients have a state in memory newer than the table's."""
        return len(self._dirty)

    def write(self, key: bytes, everything: bool = False) -> bytes | None:
        """The bytes of a deferred patient's state, to write now (None: nothing to write). A state holding
        chunks behind a missing seq is written only with ``everything`` (the group rebalances or the worker
        stops: its unacknowledged messages must be settled before the partition is given up)."""
        if key in self._dirty and key not in self._cache:  # dropped after a failed step: rebuilt, not lost
            self._rebuild(key)
        hit = self._cache.get(key)
        if key in self._dirty and hit is not None and hit[1].held and not everything:
            return None
        dirty = self._dirty.pop(key, None)
        if dirty is None or hit is None:
            return None
        new = state_to_bytes(hit[1])
        self._cache[key] = (new, hit[1])
        self.counts["state:written"] += 1
        return new
