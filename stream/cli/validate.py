"""``bpstream validate``: replay records prequentially and score every method against the arterial reference."""

from __future__ import annotations

import argparse
import json

from bpstream.stream.core import BpstreamError, UsageError
from bpstream.stream.records import list_records
from bpstream.stream.evaluation import replay_record, score_results
from bpstream.stream.evaluation import ScoreSheet, iter_with_progress
from bpstream.stream.core import Schedule, ScheduleKind
from bpstream.stream.core import LabelMode, PipelineConfig
from bpstream.stream.evaluation import DEFAULT_METHODS, available_methods, resolver



def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="replay records and score estimates against the arterial reference")
    p.add_argument("paths", nargs="+", help="WFDB records, VitalDB .vital files, or folders of them")
    p.add_argument("--records", help="comma-separated record names to keep")
    p.add_argument("--calibration", default="once", help="once | every:N (seconds of stream time)")
    p.add_argument("--methods", help="comma-separated methods (default: all available)")
    p.add_argument("--folds", help="folder of per-fold weights from `bpstream train --folds K --out DIR`")
    p.add_argument("--chunk-s", type=float, default=2.0, help="chunk length the records are cut into")
    p.add_argument("--json", dest="json_path", help="write the results document here")
    p.add_argument("--windows", dest="windows_csv", help="write one CSV row per scored window and method here")
    p.add_argument("--plot", help="write per-record and Bland-Altman PNGs into this folder")
    p.add_argument("--label-filter", choices=("full", "basic"), default="full",
                   help="full label-quality filters (default) or only the per-window jSQI limits, for comparison")
    p.add_argument("--broker", help="replay through Kafka at this broker instead of in-process")
    p.set_defaults(func=run)


def protocol(args: argparse.Namespace, config: PipelineConfig) -> dict:
    from bpstream.stream.config import Settings

    return {"published": Settings().methods[0], "calibration": str(config.arterial_schedule), "window_s": config.window_s, "hop_s": config.hop_s,
            "fs_hz": config.fs_hz, "label_filter": config.label_filter, "chunk_s": args.chunk_s, "folds": args.folds, "transport": "kafka" if args.broker else "in-process"}


def run(args: argparse.Namespace) -> int:
    schedule = Schedule.parse(args.calibration)
    if schedule.kind == ScheduleKind.OFF:
        raise BpstreamError("validate needs a calibration schedule (once or every:N)")
    methods = tuple(args.methods.split(",")) if args.methods else available_methods(DEFAULT_METHODS)
    config = PipelineConfig(methods=methods, arterial_schedule=schedule, label_filter=LabelMode(args.label_filter))
    if args.broker and args.folds:  # the workers run one set of weights: fold weights would not reach them
        raise UsageError("--folds scores each record with the weights that held it out; --broker replays through "
                         "workers that all run the shipped weights (trained on every record): use one or the other")
    paths = list_records(args.paths, args.records.split(",") if args.records else None)
    if args.broker:
        from bpstream.stream.kafka import validate_via_kafka

        sheet = validate_via_kafka(args, config, paths)
    else:
        factories_for = resolver(methods, args.folds)
        sheet = ScoreSheet(methods)
        for path in iter_with_progress(paths, len(paths)):
            score_results(sheet, replay_record(path, config, factories_for(path.name), args.chunk_s))
    print(sheet.format_table())
    always = {"input": {}, "label": {}}  # both blocks present even when nothing was rejected
    doc = sheet.to_json(protocol(args, config), rejected=always)
    from bpstream.stream.evaluation import format_change_table

    print("\n" + format_change_table(doc["methods"]))
    if doc["rejected"]:
        print("\nrejected windows: " + json.dumps(doc["rejected"]))
    if args.json_path:
        sheet.write_json(args.json_path, protocol(args, config), rejected=always)
    if args.windows_csv:
        sheet.write_windows_csv(args.windows_csv)
    if args.plot:
        from bpstream.stream.evaluation import write_plots

        write_plots(args.plot, sheet)
    return 0
