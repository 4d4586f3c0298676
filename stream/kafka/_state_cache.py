"""The worker's decoded patient states, bounded: a least-recently-used map of at most ``max_patients`` entries
(``BPSTREAM_STATE_CACHE_PATIENTS``), so a flood of new patient ids cannot grow a worker's memory without end.

An entry is only a cache of the table's value (checked against the table's bytes on every use), so dropping one
costs a decode on the patient's next message, never data, except for the patients ``pinned`` names: those whose
state in memory is newer than the table (deferred writes) or that hold chunks behind a missing seq. They are
never dropped, whatever the bound.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Callable

__all__ = ["StateCache"]


class StateCache(OrderedDict):
    """``key -> (table bytes, state)``, least recently used first (``get`` and setting an entry use it)."""

    def __init__(self, max_patients: int, pinned: Callable[[bytes], bool]):
        super().__init__()
        self.max_patients = max_patients
        self.pinned = pinned
        self.evicted = 0  # entries dropped for the bound, ever

    def get(self, key, default=None):
        if key not in self:
            return default
        self.move_to_end(key)
        return self[key]

    def __setitem__(self, key, value) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        excess = len(self) - self.max_patients
        victims: list = []
        for old in self if excess > 0 else ():  # the oldest first; never the entry just set
            if len(victims) == excess or old == key:
                break
            if not self.pinned(old):
                victims.append(old)
        for old in victims:
            del self[old]
        self.evicted += len(victims)
