"""bpstream.stream's branches of the one exception tree rooted in ``bpstream.filters.BpstreamError`` (the tree
is drawn there and in ``bpstream.stream``'s docstring)."""

from __future__ import annotations

from bpstream.filters import BpstreamError, Reason

__all__ = [
    "BpstreamError",
    "RecordError",
    "MissingChannelError",
    "DataNotFoundError",
    "MessageError",
    "BrokerRefused",
    "UsageError",
]


class RecordError(BpstreamError, ValueError):
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


class DataNotFoundError(BpstreamError, FileNotFoundError):
    """No waveform data folder was found."""


class MessageError(BpstreamError, ValueError):
    """A message failed to decode or validate; ``reason`` is its dead-letter ``Reason`` (a stable code)."""

    def __init__(self, reason: Reason, detail: str = ""):
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class BrokerRefused(BpstreamError, ConnectionError):
    """A broker answered but refused the connection's authentication or TLS (reported at once, no retries)."""


class UsageError(BpstreamError, ValueError):
    """Options or arguments that cannot go together (a command exits 2 on it, like argparse's usage errors)."""
