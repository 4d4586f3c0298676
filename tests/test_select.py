"""Choosing the published estimator on inner folds (``score_selection``): the arithmetic on hand-computed
cases and the incumbent's tie rule."""

from __future__ import annotations

import pytest

from bpstream.stream.config import Settings
from bpstream.stream.evaluation import SELECT_CANDIDATES, score_selection


def _doc(**mae):
    return {"methods": {m: {q: {"mae": v} for q, v in zip(("sbp", "dbp", "map"), vals)} for m, vals in mae.items()}}


def test_the_score_is_the_mean_ratio_to_carry_forward_and_the_lower_wins():
    results = {
        0: {"once": _doc(fusion=[2, 1, 1], ttt=[4, 2, 1], carry_forward=[4, 2, 2]),
            "every:60": _doc(fusion=[3, 1, 2], ttt=[3, 1, 1], carry_forward=[3, 2, 2])},
        1: {"once": _doc(fusion=[5, 2, 4], ttt=[5, 2, 4], carry_forward=[5, 2, 4]),
            "every:60": _doc(fusion=[1, 1, 1], ttt=[1, 1, 1], carry_forward=[1, 1, 1])},
    }
    out = score_selection(results, ("fusion", "ttt"))
    # fusion: k0 every:60 [1, .5, 1], once [.5, .5, .5]; k1 every:60 [1, 1, 1], once [1, 1, 1]: 10 / 12
    assert out["ratios"]["fusion"] == [[[1, 0.5, 1], [0.5, 0.5, 0.5]], [[1, 1, 1], [1, 1, 1]]]
    assert out["ratio_calibrations"] == ["every:60", "once"]  # the middle axis, named in the file
    assert out["score"]["fusion"] == pytest.approx(10.0 / 12)
    # ttt: k0 every:60 [1, .5, .5], once [1, 1, .5]; k1 every:60 [1, 1, 1], once [1, 1, 1]: 10.5 / 12
    assert out["score"]["ttt"] == pytest.approx(10.5 / 12)
    assert out["chosen"] == "fusion"
    assert score_selection(results, ("ttt", "fusion"))["chosen"] == "fusion"


def test_a_challenger_within_the_tie_keeps_the_incumbent():
    results = {0: {"once": _doc(fusion=[1.0, 1, 1], ttt=[0.997, 1, 1], carry_forward=[1, 1, 1])}}
    assert score_selection(results, ("fusion", "ttt"), tie=0.002)["chosen"] == "fusion"  # 0.001 better: a tie
    assert score_selection(results, ("fusion", "ttt"), tie=0.0005)["chosen"] == "ttt"
    assert SELECT_CANDIDATES[0] == Settings().methods[0]  # the published default is the incumbent
