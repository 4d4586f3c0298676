"""``bpstream bench [TARGET] [--json FILE]``: speed and memory benchmarks (never timed tests).

The targets live in ``bpstream.stream.bench`` (``BENCHES``). With no target (or ``all``), every registered
target runs in order and the documents are merged into one JSON object.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bpstream.stream.bench import BENCHES, add_arguments, run_targets

__all__ = ["BENCHES", "add_parser", "run"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: " + ", ".join(BENCHES) + " (no target: all)")
    p.add_argument("target", nargs="?", default="all", choices=[*BENCHES, "all"], help="what to measure (default: all)")
    p.add_argument("--json", dest="json_path", help="write the results document here")
    p.add_argument("--data", help="folder of WFDB records (default: BPSTREAM_DATA or ../shared/data/physionet2015)")
    p.add_argument("--records", help="comma-separated record names (default: each target's own set)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    targets = list(BENCHES) if args.target == "all" else [args.target]
    doc = run_targets(args, targets)
    text = json.dumps(doc, indent=2, sort_keys=True)
    print(text)
    if args.json_path:
        Path(args.json_path).write_text(text + "\n")
    return 0
