"""``bpstream replay PATH... --broker URL [--speed X] [--patients N] [--calibration once|every:N|off]``.

The command line of the replay publisher (``bpstream.stream.kafka.replay``; its docstring says what is sent,
in which order, and how arterial calibrations are paired).
"""

from __future__ import annotations

import argparse

from bpstream.stream.core import BpstreamError, UsageError
from bpstream.stream.kafka import replay
from bpstream.stream.records import list_records
from bpstream.stream.config import Settings

__all__ = ["add_parser", "run"]

def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="publish WFDB records or .vital files as waveform chunks (+ arterial calibrations) to Kafka")
    p.add_argument("paths", nargs="+", help="WFDB records, VitalDB .vital files, or folders of them")
    p.add_argument("--records", help="comma-separated record names to keep")
    p.add_argument("--broker", help="Kafka bootstrap servers (default $BPSTREAM_BROKER)")
    p.add_argument("--speed", type=float, default=1.0, help="1 = real time, 20 = 20x faster, 0 = unpaced")
    p.add_argument("--patients", type=int, help="number of patients (records are looped under distinct ids)")
    p.add_argument("--calibration", default="once", help="arterial calibration commands: once | every:N | off")
    p.add_argument("--start", help="UTC start time of record second 0 (ISO 8601; default now)")
    p.add_argument("--no-abp", dest="with_abp", action="store_false", help="do not send the arterial waveform")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from bpstream.stream.kafka import from_iso

    settings = Settings.from_env().replace(broker=args.broker)
    paths = list_records(args.paths, args.records.split(",") if args.records else None)
    if not paths:
        raise BpstreamError("no records found")
    try:
        start = from_iso(args.start, "--start") if args.start else None
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    stats = replay(settings, paths, speed=args.speed, patients=args.patients, calibration=args.calibration,
                   start_s=start, with_abp=args.with_abp, quiet=False)
    print(f"replay: {len(stats.patients)} patients, {stats.chunks} chunks, {stats.commands} calibrations "
          f"in {stats.wall_s:.1f} s")
    return 0
