"""Reading the output topics back, and how each document prints (``bpstream tail``, the board's end-to-end
test)."""

from __future__ import annotations

import json
import threading
from typing import Any, Iterator

from bpstream.stream.config import Settings

__all__ = ["FORMATS", "format_estimate", "format_event", "render", "documents"]


FORMATS = ("text", "json", "fhir")


def _q(doc: Any) -> str:
    return "---" if not doc else f"{doc['value']:.0f}"


def format_estimate(doc: dict) -> str:
    sd = doc.get("sbp") and doc["sbp"].get("sd")
    cal = doc.get("calibration") or {}
    age = cal.get("age_s")
    line = (f"{doc['window_end'][11:19]} {doc['patient_id']:<12} #{doc['seq']:<5} {doc['validity']:<12} "
            f"{_q(doc.get('sbp'))}/{_q(doc.get('dbp'))} ({_q(doc.get('map'))}) mmHg")
    if sd:
        line += f" ±{1.645 * sd:.0f}"
    line += f"  cal {cal.get('count', 0)}" + (f" {age:.0f}s ago" if age is not None else "")
    if doc.get("reasons"):
        line += "  " + ",".join(doc["reasons"])
    return line


def format_event(doc: dict) -> str:
    reason = f" ({doc['reason']})" if doc.get("reason") else ""
    return f"{(doc.get('at') or doc['published_at'])[11:19]} {doc['patient_id']:<12} event {doc['type']}{reason}"


def render(doc: dict, is_event: bool, fmt: str, patient_system: str | None = None) -> str:
    """One output line for a decoded document of the estimates (or events) topic (``patient_system``: FHIR)."""
    if fmt == "json":
        return json.dumps(doc)
    if fmt == "fhir":
        from ._fhir import observation

        return json.dumps(observation(doc, patient_system))
    return format_event(doc) if is_event else format_estimate(doc)


def documents(settings: Settings, topics: list[str], *, from_beginning: bool = False, timeout_s: float | None = None,
              stop: threading.Event | None = None) -> Iterator[tuple[str, bytes | None, Any]]:
    """(topic, key, decoded JSON) of every message of ``topics`` (messages that are not JSON are passed over), from
    a consumer without a group (no commits). Ends after ``timeout_s`` without a message; with ``stop``, runs until
    it is set (checked at least every 0.5 s). Closing the generator closes the consumer."""
    from ._topics import consumer

    idle_ms = int(timeout_s * 1000) if timeout_s else (500 if stop is not None else float("inf"))
    c = consumer(settings, *topics, auto_offset_reset="earliest" if from_beginning else "latest",
                 consumer_timeout_ms=idle_ms)
    try:
        while stop is None or not stop.is_set():
            for record in c:
                try:
                    doc = json.loads(record.value)
                except ValueError:
                    continue
                yield record.topic, record.key, doc
                if stop is not None and stop.is_set():
                    return
            if stop is None or timeout_s:
                return
    finally:
        c.close()
