"""``bpstream validate``: replay records prequentially and score every method against the arterial reference."""

from __future__ import annotations

import argparse
import json
import sys

from ._errors import BpstreamError
from ._records import list_records
from ._replay_local import replay_record, score_results
from ._report import ScoreSheet, iter_with_progress
from ._schedule import Schedule
from ._step import PipelineConfig
from ._estimators import available_methods, resolver

DEFAULT_METHODS = ("mean", "carry_forward", "frozen", "offset", "ttt")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="replay records and score estimates against the arterial reference")
    p.add_argument("paths", nargs="+", help="WFDB record files or folders")
    p.add_argument("--records", help="comma-separated record names to keep")
    p.add_argument("--calibration", default="once", help="once | every:N (seconds of stream time)")
    p.add_argument("--methods", help="comma-separated methods (default: all available)")
    p.add_argument("--folds", help="folder of per-fold weights from `bpstream train --folds K --out DIR`")
    p.add_argument("--chunk-s", type=float, default=2.0, help="chunk length the records are cut into")
    p.add_argument("--json", dest="json_path", help="write the results document here")
    p.add_argument("--plot", help="write per-record and Bland-Altman PNGs into this folder")
    p.add_argument("--label-filter", choices=("full", "basic"), default="full",
                   help="full label-quality filters (default) or only the per-window jSQI limits, for comparison")
    p.add_argument("--broker", help="replay through Kafka at this broker instead of in-process")
    p.set_defaults(func=run)


def protocol(args: argparse.Namespace, config: PipelineConfig) -> dict:
    return {"calibration": str(config.arterial_schedule), "window_s": config.window_s, "hop_s": config.hop_s,
            "fs_hz": config.fs_hz, "label_filter": config.label_filter, "chunk_s": args.chunk_s, "folds": args.folds, "transport": "kafka" if args.broker else "in-process"}


def run(args: argparse.Namespace) -> int:
    try:
        schedule = Schedule.parse(args.calibration)
        if schedule.kind == "off":
            raise BpstreamError("validate needs a calibration schedule (once or every:N)")
        methods = tuple(args.methods.split(",")) if args.methods else available_methods(DEFAULT_METHODS)
        config = PipelineConfig(methods=methods, arterial_schedule=schedule, label_filter=args.label_filter)
        paths = list_records(args.paths, args.records.split(",") if args.records else None)
        if args.broker:
            from ._kafka_validate import validate_via_kafka

            sheet = validate_via_kafka(args, config, paths)
        else:
            factories_for = resolver(methods, args.folds)
            sheet = ScoreSheet(methods)
            for path in iter_with_progress(paths, len(paths)):
                score_results(sheet, replay_record(path, config, factories_for(path.name), args.chunk_s))
    except BpstreamError as exc:
        print(f"bpstream validate: {exc}", file=sys.stderr)
        return 2
    print(sheet.format_table())
    always = {"input": {}, "label": {}}  # both blocks present even when nothing was rejected
    doc = sheet.to_json(protocol(args, config), rejected=always)
    if doc["rejected"]:
        print("\nrejected windows: " + json.dumps(doc["rejected"]))
    if args.json_path:
        sheet.write_json(args.json_path, protocol(args, config), rejected=always)
    if args.plot:
        from ._plots import write_plots

        write_plots(args.plot, sheet)
    return 0
