"""Per-patient commands (calibrate, reset, discharge) sent to the commands topic (``bpstream calibrate``)."""

from __future__ import annotations

import time
from bpstream.stream.core import Calibrate, Discharge, Reset
from bpstream.stream.config import Settings

from ._codec import dumps
from ._schemas import command_doc

__all__ = ["send_command"]


def send_command(settings: Settings, patient_id: str, command: Calibrate | Reset | Discharge,
                 operator: str | None = None, producer=None) -> dict:
    """Publish one command; returns the document sent."""
    from ._topics import ensure_topics
    from ._topics import producer as make_producer

    doc = command_doc(patient_id, command, time.time(), operator)
    own = producer is None
    if own:
        ensure_topics(settings, [settings.topic_commands])
        producer = make_producer(settings)
    try:
        producer.send(settings.topic_commands, key=patient_id.encode(), value=dumps(doc)).get(timeout=30)
    finally:
        if own:
            producer.close()
    return doc
