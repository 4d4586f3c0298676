"""bpstream.models: per-patient estimators (torch on the CPU) and evaluation metrics.

Never reads the environment, files (except the weights shipped inside the package, as package data:
``default_population``), the clock or Kafka; weights files are the stream layer's
(``bpstream.stream.records.read_population``).
"""

from ._base import (
    ESTIMATORS,
    CarryForward,
    Estimate,
    Estimator,
    MeanEstimator,
    PatientRouter,
    Validity,
    make_estimator,
    register,
)
from ._dynamics import fit_feature_delta, label_dynamics
from ._features import normalize_waveforms, window_features
from ._metrics import QuantityMetrics, score
from ._state import StateError, pack, unpack
from bpstream.filters import migrates, stateful  # tag a stateful class (see that module)


def _model_factory(class_name: str, module: str = "_ttt"):
    """Registry factory that imports torch only when a model estimator is first built."""

    def factory(**params):
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{module}"), class_name)(**params)

    factory.__name__ = f"make_{class_name}"
    return factory


register("frozen", _model_factory("FrozenEstimator"))
register("offset", _model_factory("OffsetEstimator"))
register("ttt", _model_factory("TTTEstimator"))
register("fusion", _model_factory("FusionEstimator", "_fusion"))

# estimators built on the population model (``bpstream validate --folds`` gives them each fold's weights)
MODEL_METHODS = ("frozen", "offset", "ttt", "fusion")


def fit_test_time_constants(records, center):
    """Fit the ``fusion`` and ``frozen`` constants and the ``calibration_suggested`` thresholds
    (``constants["suggest"]``) on predictions for patients the model never saw
    (``records``: a list of ``RecordPredictions``; ``center``: the training label centre). Returns the dict
    to merge into a population's constants."""
    from ._frozen_fit import fit_frozen
    from ._fusion_fit import fit_fusion
    from ._suggest_fit import fit_suggest

    fusion = fit_fusion(records)
    return {"fusion": fusion, **fit_frozen(records, center), **fit_suggest(records, fusion)}


def record_predictions(t_s, p, y, embedding=None, group=0, w=None):
    """One held-out record's calibration-free predictions (n, 3), labels (n, 3), window end times (n,) and
    the model's embeddings (n, 41), for ``fit_test_time_constants``; ``group``: its inner fold; ``w``: the
    predicting model's feature-delta map (3, 9) (``Population.feat_weight``)."""
    from ._fusion_fit import RecordPredictions

    return RecordPredictions(t_s, p, y, embedding, group, w)

# torch-backed names load on first use (PEP 562), so importing bpstream.models stays light
_LAZY = {
    "PopulationNet": "_net",
    "Population": "_population",
    "default_population": "_population",
    "population_from_bytes": "_population",
    "population_to_bytes": "_population",
    "TrainArrays": "_train",
    "UnlabeledArrays": "_pretrain",
    "PretrainConfig": "_pretrain",
    "pretrain_encoder": "_pretrain",
    "TrainConfig": "_train",
    "calibrate": "_train",
    "embed_all": "_train",
    "fold_of_record": "_train",
    "record_block": "_train",
    "train_population": "_train",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "ESTIMATORS",
    "CarryForward",
    "Estimate",
    "Estimator",
    "MODEL_METHODS",
    "fit_test_time_constants",
    "record_predictions",
    "MeanEstimator",
    "PatientRouter",
    "StateError",
    "Validity",
    "make_estimator",
    "migrates",
    "pack",
    "register",
    "stateful",
    "unpack",
    "Population",
    "PopulationNet",
    "QuantityMetrics",
    "TrainArrays",
    "TrainConfig",
    "UnlabeledArrays",
    "PretrainConfig",
    "pretrain_encoder",
    "calibrate",
    "default_population",
    "embed_all",
    "fit_feature_delta",
    "fold_of_record",
    "label_dynamics",
    "normalize_waveforms",
    "record_block",
    "population_from_bytes",
    "population_to_bytes",
    "score",
    "train_population",
    "window_features",
]
