"""The ``bpstream`` command line.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and ``run(args) -> int``;
add a module to ``COMMANDS`` to register it. Modules are imported lazily by name so that
``bpstream --help`` stays fast and one broken command cannot take the others down.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from bpstream.stream.config import SettingsError
from bpstream.stream.core import BpstreamError, UsageError

# module names under bpstream.stream.cli, one per sub-command group
COMMANDS: list[str] = [
    "validate",
    "demo",
    "worker",
    "replay",
    "calibrate",
    "tail",
    "board",
    "broker",
    "bench",
    "quality",
    "train",
    "schemas",
]


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bpstream")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def _chosen(argv: list[str]) -> str | None:
    """The sub-command named on the command line (the first word that is not an option), if any."""
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with a sub-command in ``argv`` only that command's module is imported (so ``bpstream tail``
    works where, say, wfdb is not installed), otherwise all of them, for ``--help``."""
    parser = argparse.ArgumentParser(
        prog="bpstream",
        description="Streaming arterial blood pressure estimation from ECG and PPG.",
    )
    parser.add_argument("--version", action="version", version=f"bpstream {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = _chosen(list(sys.argv[1:] if argv is None else argv))
    for name in [chosen] if chosen else COMMANDS:
        try:
            module = importlib.import_module(f"bpstream.stream.cli.{name}")
        except ImportError as exc:
            if chosen:
                raise
            sub.add_parser(name, help=f"(unavailable here: {type(exc).__name__}: {exc.name or exc})")
            continue
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command: 0 on success, 1 on a runtime error (any ``BpstreamError``: one line on stderr, no
    traceback), 2 on a usage error (``UsageError``, a flag or setting bpstream cannot use: ``SettingsError``,
    argparse's own)."""
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (UsageError, SettingsError) as exc:
        print(f"bpstream {args.command}: {exc}", file=sys.stderr)
        return 2
    except BpstreamError as exc:
        print(f"bpstream {args.command}: {exc}", file=sys.stderr)
        return 1

