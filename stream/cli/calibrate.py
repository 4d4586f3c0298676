"""``bpstream calibrate PATIENT --sbp S --dbp D [--map M] [--at TIME] --broker URL`` (also --reset, --discharge).

Publishes one ``bp.commands.v1`` message keyed by the patient. The worker answers on ``bp.events.v1``
(calibration accepted or rejected with a reason, patient reset or discharged).
"""

from __future__ import annotations

import argparse
import time
import uuid

from bpstream.stream.core import BpstreamError
from bpstream.stream.core import Calibrate, Discharge, Reset
from bpstream.stream.kafka import from_iso
from bpstream.stream.config import Settings
from bpstream.stream.kafka import send_command

__all__ = ["add_parser", "run"]




def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("calibrate", help="send a calibration (or reset/discharge) command for one patient")
    p.add_argument("patient", help="patient id (the key of the waveform stream)")
    p.add_argument("--sbp", type=float, help="systolic pressure, mmHg")
    p.add_argument("--dbp", type=float, help="diastolic pressure, mmHg")
    p.add_argument("--map", type=float, help="mean pressure, mmHg (optional)")
    p.add_argument("--at", help="measurement time, ISO 8601 with offset (default: now)")
    p.add_argument("--source", choices=("cuff", "arterial"), default="cuff")
    p.add_argument("--operator", help="who took the reading")
    p.add_argument("--command-id", dest="command_id", help="idempotency id (default: a new UUID)")
    p.add_argument("--reset", action="store_true", help="forget the patient's calibration and adaptation")
    p.add_argument("--discharge", action="store_true", help="the patient left: drop their state")
    p.add_argument("--broker", help="Kafka bootstrap servers (default $BPSTREAM_BROKER)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    command_id = args.command_id or str(uuid.uuid4())
    settings = Settings.from_env().replace(broker=args.broker)
    if args.reset and args.discharge:
        raise BpstreamError("--reset and --discharge exclude each other")
    if args.reset:
        command: Calibrate | Reset | Discharge = Reset(command_id)
    elif args.discharge:
        command = Discharge(command_id)
    else:
        if args.sbp is None or args.dbp is None:
            raise BpstreamError("a calibration needs --sbp and --dbp (or use --reset / --discharge)")
        at = from_iso(args.at, "--at") if args.at else time.time()
        command = Calibrate(command_id, at, args.sbp, args.dbp, args.map, args.source)
    doc = send_command(settings, args.patient, command, args.operator)
    print(f"sent {doc['type']} {doc['command_id']} to {settings.topic_commands}")
    return 0
