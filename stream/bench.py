"""``bpstream bench [TARGET] [--json FILE]``: speed and memory benchmarks (never timed tests).

Each target is a module ``bpstream.stream._bench_<name>`` exposing ``run_bench(args) -> dict`` that
returns ``{"<name>": {...numbers...}}`` and may expose ``add_arguments(parser)`` for its own options
(prefix them with the target name; ``--json``, ``--data`` and ``--records`` are shared).
Register a target by adding one line to ``BENCHES``. With no target (or ``all``), every registered
target runs in order and the documents are merged into one JSON object.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from ._errors import BpstreamError

# target name -> module path; order is the order of `bpstream bench` / `bpstream bench all`
BENCHES: dict[str, str] = {
    "filters": "bpstream.stream._bench_filters",
    "perf": "bpstream.stream._bench_all",
    "model": "bpstream.stream._bench_model",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="benchmarks: " + ", ".join(BENCHES) + " (no target: all)")
    p.add_argument("target", nargs="?", default="all", choices=[*BENCHES, "all"], help="what to measure (default: all)")
    p.add_argument("--json", dest="json_path", help="write the results document here")
    p.add_argument("--data", help="folder of WFDB records (default: BPSTREAM_DATA or ../shared/data/physionet2015)")
    p.add_argument("--records", help="comma-separated record names (default: each target's own set)")
    for module in BENCHES.values():
        hook = getattr(importlib.import_module(module), "add_arguments", None)
        if hook is not None:
            hook(p)
    p.set_defaults(func=run)


def run_targets(args: argparse.Namespace, targets: list[str]) -> dict:
    doc: dict = {}
    for name in targets:
        doc.update(importlib.import_module(BENCHES[name]).run_bench(args))
    return doc


def run(args: argparse.Namespace) -> int:
    targets = list(BENCHES) if args.target == "all" else [args.target]
    try:
        doc = run_targets(args, targets)
    except BpstreamError as exc:
        print(f"bpstream bench: {exc}", file=sys.stderr)
        return 2
    text = json.dumps(doc, indent=2, sort_keys=True)
    print(text)
    if args.json_path:
        Path(args.json_path).write_text(text + "\n")
    return 0
