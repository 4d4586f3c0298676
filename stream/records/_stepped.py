"""The one record loop: a record's chunks through the per-patient step (``Pipeline.step_many``).

``validate``, ``demo``, the replay bench, dataset building and the quality report all read a record
through here, so they see exactly the windows, gates and order rules a worker applies.
"""

from __future__ import annotations

from typing import Iterator

from bpstream.filters import ChunkError
from bpstream.stream.core import ChunkMessage, Flush, Output, Pipeline

from ._records import Recording, iter_chunks

__all__ = ["iter_outputs", "record_messages"]


def record_messages(pipeline: Pipeline, recording: Recording, chunk_s: float = 2.0) -> list[ChunkMessage]:
    """A record's chunks as step messages, numbered in record order; chunks the windower refuses are left out
    (their seq numbers too: a gap, as a monitor's refused chunk would leave)."""
    messages = []
    for seq, chunk in enumerate(iter_chunks(recording, chunk_s)):
        try:
            pipeline.check(ChunkMessage(seq, chunk))
        except ChunkError:
            continue
        messages.append(ChunkMessage(seq, chunk))
    return messages


def iter_outputs(pipeline: Pipeline, recording: Recording, chunk_s: float = 2.0, batched: bool = True,
                 block: int = 64, states: dict | None = None) -> Iterator[Output]:
    """The step over a record's chunks (one patient, keyed by the record's name in ``states``), chunks
    the windower refuses left out, then a ``Flush`` (the end of the record applies any chunk still held
    behind a gap, as a worker does for a quiet patient). ``batched``: blocks of ``block`` chunks through
    ``Pipeline.step_many`` (the same outputs as ``Pipeline.step`` one by one, several times cheaper)."""
    key = recording.name
    messages = [(key, message) for message in record_messages(pipeline, recording, chunk_s)]
    states = {} if states is None else states
    if batched:
        for a in range(0, len(messages), block):
            for outputs in pipeline.step_many(states, messages[a : a + block]):
                yield from outputs
    else:
        for _, message in messages:
            states[key], outputs = pipeline.step(states.get(key), message)
            yield from outputs
    if states.get(key) is not None and states[key].held:
        states[key], outputs = pipeline.step(states[key], Flush())
        yield from outputs
