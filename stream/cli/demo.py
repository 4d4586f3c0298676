"""``bpstream demo``: the main job on an embedded default, no broker.

Replays a handful of PhysioNet records through the full in-process loop (windows -> quality gates ->
per-patient estimator, predict first, then learn from the calibration due), printing a live line per
patient and hop and the summary table at the end.
"""

from __future__ import annotations

import argparse
import time

from bpstream.stream.evaluation import DEFAULT_METHODS, available_methods, resolver
from bpstream.stream.core import WindowResult
from bpstream.stream.records import list_records
from bpstream.stream.evaluation import replay_record, score_results
from bpstream.stream.evaluation import ScoreSheet
from bpstream.stream.core import Schedule
from bpstream.stream.records import find_data_dir
from bpstream.stream.config import Settings
from bpstream.stream.core import PipelineConfig

DEFAULT_RECORDS = ("a555l", "f362s", "v370s", "b330s")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="replay a few records through the in-process loop (no broker needed)")
    p.add_argument("--data", help="folder of WFDB records or .vital files (default: $BPSTREAM_DATA, else ../shared/data/physionet2015)")
    p.add_argument("--records", default=",".join(DEFAULT_RECORDS), help="comma-separated record names")
    p.add_argument("--calibration", default="once", help="once | every:N")
    p.add_argument("--speed", type=float, default=0.0, help="x real time for the live lines (0 = as fast as possible)")
    p.add_argument("--every", type=int, default=5, help="print one live line per patient every N hops")
    p.set_defaults(func=run)


def _fmt(v: float | None) -> str:
    return "  -  " if v is None else f"{v:5.0f}"


def live_line(record: str, w: WindowResult, method: str) -> str:
    est = w.estimates[method]
    ref = w.reference
    status = est.validity.value + (" " + ",".join(r.value for r in est.reasons) if est.reasons else "")
    ref_txt = f"{_fmt(ref.sbp_mmhg)}/{_fmt(ref.dbp_mmhg)}" if ref is not None and ref.usable else "   - /  -  "
    return (f"{record:>8} t={w.t_end_s:6.0f}s  {method} {_fmt(est.sbp_mmhg)}/{_fmt(est.dbp_mmhg)} "
            f"({_fmt(est.map_mmhg)})  ref {ref_txt}  cal={w.calibration_count}  {status}")


def run(args: argparse.Namespace) -> int:
    data = find_data_dir(args.data, Settings.from_env())
    names = [n for n in args.records.split(",") if n]
    available = {p.name for p in list_records([data])}
    names = [n for n in names if n in available] or sorted(available)[:4]
    paths = list_records([data], names)
    methods = available_methods(DEFAULT_METHODS)
    primary = "fusion" if "fusion" in methods else "carry_forward"
    config = PipelineConfig(methods=methods, arterial_schedule=Schedule.parse(args.calibration))
    factories_for = resolver(methods, None)
    print(f"bpstream demo: {len(paths)} records from {data}, calibration {args.calibration}, methods {', '.join(methods)}")
    sheet = ScoreSheet(methods)
    for path in paths:
        run_ = replay_record(path, config, factories_for(path.name))
        for i, w in enumerate(run_.windows):
            if i % max(1, args.every) == 0 or w.labels:
                print(live_line(run_.record, w, primary), flush=True)
                if args.speed > 0:
                    time.sleep(config.hop_s * max(1, args.every) / args.speed)
        score_results(sheet, run_)
    print()
    print(sheet.format_table())
    return 0
