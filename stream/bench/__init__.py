"""bpstream.stream.bench: every ``bpstream bench`` target (speed and memory; never timed tests).

Each target is a module ``_bench_<name>`` here exposing ``run_bench(args) -> dict`` that returns
``{"<name>": {...numbers...}}`` and may expose ``add_arguments(parser)`` for its own options (prefix them with
the target name; ``--json``, ``--data`` and ``--records`` are shared). Register a target by adding one line to
``BENCHES``; its module is imported only when the bench command runs.
"""

from __future__ import annotations

import argparse
import importlib

__all__ = ["BENCHES", "add_arguments", "run_targets"]

# target name -> module path; order is the order of `bpstream bench` / `bpstream bench all`
BENCHES: dict[str, str] = {
    "filters": f"{__name__}._bench_filters",
    "perf": f"{__name__}._bench_all",
    "model": f"{__name__}._bench_model",
    "decode": f"{__name__}._bench_decode",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Every target's own options."""
    for module in BENCHES.values():
        hook = getattr(importlib.import_module(module), "add_arguments", None)
        if hook is not None:
            hook(p)


def run_targets(args: argparse.Namespace, targets: list[str]) -> dict:
    """Run ``targets`` in order; their documents merged into one."""
    doc: dict = {}
    for name in targets:
        doc.update(importlib.import_module(BENCHES[name]).run_bench(args))
    return doc
