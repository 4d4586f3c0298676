"""Which estimators exist, and how each record gets the ones that never saw its fold."""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

from bpstream.models import ESTIMATORS, MODEL_METHODS, Estimator, make_estimator

__all__ = ["DEFAULT_METHODS", "available_methods", "resolver"]

DEFAULT_METHODS = ("fusion", "mean", "carry_forward", "frozen", "offset", "ttt")


def available_methods(wanted: Sequence[str]) -> tuple[str, ...]:
    return tuple(m for m in wanted if m in ESTIMATORS)


def resolver(methods: Sequence[str], folds_dir: str | None) -> Callable[[str], Mapping[str, Callable[[], Estimator]]]:
    """A function record name -> {method: factory}. Without folds, the shipped defaults.

    ``mean`` predicts the centre of the training labels stored with the population weights (the
    median SBP/DBP/MAP over the training windows): the shipped weights' without folds, else the
    weights of the fold that held the record out.
    """
    factories = {m: (lambda m=m: make_estimator(m)) for m in methods}
    if "mean" in methods:
        from bpstream.stream.records import read_population

        factories["mean"] = _mean_factory(read_population())
    if folds_dir:
        return _fold_resolver(methods, folds_dir, factories)

    def for_record(record: str) -> Mapping[str, Callable[[], Estimator]]:
        return factories

    return for_record




def _fold_resolver(methods: Sequence[str], folds_dir: str, defaults: Mapping[str, Callable[[], Estimator]]):
    from bpstream.stream.core import BpstreamError
    from bpstream.stream.records import load_folds, read_population

    weights = load_folds(folds_dir)
    loaded: dict = {}  # weights file -> its Population, read once and shared by the fold's records

    def for_record(record: str) -> Mapping[str, Callable[[], Estimator]]:
        if record not in weights:
            raise BpstreamError(f"record {record} is in no fold of {folds_dir} (see its folds.json)")
        if weights[record] not in loaded:
            loaded[weights[record]] = read_population(weights[record])
        pop = loaded[weights[record]]
        out = {m: ((lambda m=m: make_estimator(m, population=pop)) if m in MODEL_METHODS else defaults[m])
               for m in methods}
        if "mean" in methods:
            out["mean"] = _mean_factory(pop)
        return out

    return for_record


def _mean_factory(population) -> Callable[[], Estimator]:
    sbp, dbp, map_ = (float(v) for v in population.net.y_mean)
    return lambda: make_estimator("mean", sbp_mmhg=sbp, dbp_mmhg=dbp, map_mmhg=map_)
