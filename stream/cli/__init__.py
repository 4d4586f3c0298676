"""The ``bpstream`` command line: ``main`` and one thin module per command (only the chosen one is imported)."""

from ._main import COMMANDS, build_parser, main

__all__ = ["main", "build_parser", "COMMANDS"]
