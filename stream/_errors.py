"""The bpstream exception tree.

    BpstreamError
    ├── RecordError            a waveform record cannot be used
    │   └── MissingChannelError    a role the caller needs is absent from a record
    ├── DataNotFoundError      no data folder (with a hint on how to download PhysioNet records)
    └── MessageError           a Kafka message failed to decode or validate (dead-lettered)
"""

from __future__ import annotations

__all__ = [
    "BpstreamError",
    "RecordError",
    "MissingChannelError",
    "DataNotFoundError",
    "MessageError",
]


class BpstreamError(Exception):
    """Base of every error bpstream raises on purpose."""


class RecordError(BpstreamError):
    """A waveform record cannot be read or used."""


class MissingChannelError(RecordError):
    """A record lacks a channel role (ecg, ppg, abp) that the caller needs."""

    def __init__(self, record: str, missing: tuple[str, ...], channels: tuple[str, ...]):
        self.record = record
        self.missing = missing
        self.channels = channels
        super().__init__(
            f"record {record!r} has no {', '.join(missing)} channel "
            f"(it has: {', '.join(channels) or 'no channels'})"
        )


class DataNotFoundError(BpstreamError):
    """No waveform data folder was found."""


class MessageError(BpstreamError):
    """A message failed to decode or validate; ``reason`` is a short stable code."""

    def __init__(self, reason: str, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)
