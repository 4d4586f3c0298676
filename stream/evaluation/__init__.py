"""bpstream.stream.evaluation."""

from ._change import format_change_table
from ._estimators import DEFAULT_METHODS, available_methods, resolver
from ._fitting import fit_population, log, unlabeled_for
from ._nested import run_nested
from ._plots import write_plots
from ._replay_local import RecordRun, replay_record, score_results
from ._report import ScoreSheet, iter_with_progress
from ._select import SELECT_CALIBRATIONS, SELECT_CANDIDATES, score_selection, select_published

__all__ = [
    "DEFAULT_METHODS",
    "RecordRun",
    "SELECT_CALIBRATIONS",
    "SELECT_CANDIDATES",
    "ScoreSheet",
    "available_methods",
    "fit_population",
    "unlabeled_for",
    "format_change_table",
    "iter_with_progress",
    "log",
    "replay_record",
    "resolver",
    "run_nested",
    "score_results",
    "score_selection",
    "select_published",
    "write_plots",
]
