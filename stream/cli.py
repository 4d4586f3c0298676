"""The ``bpstream`` command line.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``;
add a module to ``COMMANDS`` to register it. Modules are imported lazily by name so that
``bpstream --help`` stays fast and one broken command cannot take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module names under bpstream.stream, one per sub-command group
COMMANDS: list[str] = [
    "validate",
    "demo",
    "worker",
    "replay",
    "calibrate",
    "tail",
    "broker",
    "bench",
    "quality",
    "train",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bpstream",
        description="Streaming arterial blood pressure estimation from ECG and PPG.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f"bpstream.stream.{name}")
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
