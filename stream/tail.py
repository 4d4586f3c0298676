"""``bpstream tail [--patient P] [--events] --broker URL``: print estimates (and events) as they arrive.

A plain kafka-python consumer without a group: it reads from the end (or ``--from-beginning``)
and never commits, so it can run beside any other consumer.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ._settings import Settings, SettingsError

__all__ = ["add_parser", "run", "format_estimate", "format_event"]


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


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("tail", help="print estimates as they arrive on bp.estimates.v1")
    p.add_argument("--patient", help="only this patient")
    p.add_argument("--events", action="store_true", help="also print bp.events.v1")
    p.add_argument("--from-beginning", action="store_true", help="start at the oldest message")
    p.add_argument("--json", action="store_true", help="print the raw JSON documents")
    p.add_argument("--max", type=int, help="stop after this many messages")
    p.add_argument("--timeout", type=float, help="stop after this many seconds without a message")
    p.add_argument("--broker", help="Kafka bootstrap servers (default $BPSTREAM_BROKER)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ._topics import consumer

    try:
        settings = Settings.from_env().replace(broker=args.broker)
    except SettingsError as exc:
        print(f"bpstream tail: {exc}", file=sys.stderr)
        return 2
    topics = [settings.topic_estimates] + ([settings.topic_events] if args.events else [])
    c = consumer(settings, *topics, auto_offset_reset="earliest" if args.from_beginning else "latest",
                 consumer_timeout_ms=int(args.timeout * 1000) if args.timeout else float("inf"))
    n = 0
    try:
        for record in c:
            if args.patient and record.key != args.patient.encode():
                continue
            try:
                doc = json.loads(record.value)
            except ValueError:
                continue
            if args.json:
                print(json.dumps(doc), flush=True)
            else:
                print(format_event(doc) if record.topic == settings.topic_events else format_estimate(doc), flush=True)
            n += 1
            if args.max and n >= args.max:
                break
    except KeyboardInterrupt:
        pass
    finally:
        c.close()
    return 0
