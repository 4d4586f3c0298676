"""``bpstream tail [--patient P] [--events] [--format text|json|fhir] --broker URL``: print estimates (and
events) as they arrive. ``--format fhir`` prints each estimate as a FHIR R4 Observation (one JSON per line).

A plain kafka-python consumer without a group: it reads from the end (or ``--from-beginning``)
and never commits, so it can run beside any other consumer.
"""

from __future__ import annotations

import argparse
import sys

from bpstream.stream.core import UsageError
from bpstream.stream.config import Settings
from bpstream.stream.kafka import FORMATS, documents, render

__all__ = ["add_parser", "run"]











def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tail", help="print estimates as they arrive on bp.estimates.v1")
    p.add_argument("--patient", help="only this patient")
    p.add_argument("--events", action="store_true", help="also print bp.events.v1")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    p.add_argument("--format", choices=FORMATS, default=None,
                   help="text (default), json (the raw documents) or fhir (each estimate as a FHIR R4 Observation)")
    p.add_argument("--json", action="store_true", help="the same as --format json")
    p.add_argument("--max", type=int, help="stop after this many messages")
    p.add_argument("--timeout", type=float, help="stop after this many seconds without a message")
    p.add_argument("--broker", help="Kafka bootstrap servers (default $BPSTREAM_BROKER)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = Settings.from_env().replace(broker=args.broker)
    fmt = args.format or ("json" if args.json else "text")
    if fmt == "fhir" and args.events:
        raise UsageError("--format fhir prints estimates only (events have no FHIR form here); drop --events")
    topics = [settings.topic_estimates] + ([settings.topic_events] if args.events else [])
    n = 0
    stream = documents(settings, topics, from_beginning=args.from_beginning, timeout_s=args.timeout)
    try:
        for topic, key, doc in stream:
            if args.patient and key != args.patient.encode():
                continue
            try:
                line = render(doc, topic == settings.topic_events, fmt, settings.fhir_patient_system)
            except (KeyError, TypeError, ValueError):  # not a document of this schema (no content echoed)
                print(f"bpstream tail: skipped a message of {topic} that is not a known document", file=sys.stderr)
                continue
            print(line, flush=True)
            n += 1
            if args.max and n >= args.max:
                break
    except KeyboardInterrupt:
        pass
    finally:
        stream.close()
    return 0


