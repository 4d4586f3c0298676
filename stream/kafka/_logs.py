"""Worker log format: ``text`` (faust's default) or ``json`` (``BPSTREAM_LOG_FORMAT=json``).

JSON logs carry the same messages as text logs, one object a line: ``ts`` (ISO 8601 UTC), ``level``,
``logger``, ``msg`` and, for a logged exception, ``exc_type`` and ``exc_where`` (file:line of each
frame) but never the exception's message (it may echo message content). The messages themselves
name topic/partition/offset, never a patient (see ``_processor``).
"""

from __future__ import annotations

import json
import logging
import traceback
from datetime import datetime, timezone
from typing import Any

__all__ = ["JsonFormatter", "logging_config", "where"]


def where(exc: BaseException) -> str:
    """An exception's type and innermost bpstream frame (file:line), never its message (it may echo content)."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "bpstream" in f.filename or "/stream/" in f.filename]
    last = frames[-1] if frames else None
    return type(exc).__name__ + (f" at {last.filename.rsplit('/', 1)[-1]}:{last.lineno}" if last else "")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info and record.exc_info[0] is not None:
            exc_type, _, tb = record.exc_info
            doc["exc_type"] = exc_type.__name__
            doc["exc_where"] = [f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno}" for f in traceback.extract_tb(tb)]
        return json.dumps(doc, ensure_ascii=False)


# loggers that write whole messages (keys and values: patient ids, estimates) at debug level: never below info
PAYLOAD_LOGGERS = ("faust.topics", "faust.tables", "faust.transport", "aiokafka", "kafka")


def logging_config(log_format: str, level: str) -> dict:
    """The ``logging_config`` for faust's Worker (mode's ``dictConfig``, merged with its defaults): faust's
    text format or one JSON object a line; in both, the loggers that would write message contents at debug
    level stay at info or above, whatever ``level`` is."""
    floor = logging.getLevelName(max(logging.INFO, logging.getLevelName(level.upper())))
    config: dict[str, Any] = {"merge": True, "loggers": {name: {"level": floor} for name in PAYLOAD_LOGGERS}}
    if log_format == "json":
        config["formatters"] = {"json": {"()": f"{__name__}.JsonFormatter"}}
        config["handlers"] = {"default": {"class": "logging.StreamHandler", "formatter": "json",
                                          "level": level.upper(), "stream": "ext://sys.stdout"}}
    return config
