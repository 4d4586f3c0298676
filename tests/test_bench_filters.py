"""``bpstream bench filters``: a functional smoke test (numbers exist and make sense); never timing asserts."""

from __future__ import annotations

import importlib
import json

import numpy as np

from bpstream.filters import CausalResampler
from bpstream.stream.cli.bench import BENCHES
from bpstream.stream.cli import main
from bpstream.stream.bench._bench_filters import resample_batch

from ._data import PN2015


def test_bench_filters_writes_the_documented_json(tmp_path, capsys):
    out = tmp_path / "b.json"
    rc = main(["bench", "filters", "--data", str(PN2015), "--records", "f362s",
               "--filters-nk-windows", "2", "--filters-repeats", "1", "--json", str(out)])
    assert rc == 0
    doc = json.loads(out.read_text())
    f = doc["filters"]
    assert f["ms_per_window"] > 0 and f["neurokit2_ms_per_window"] > 0
    parts = f["ms_per_window_resample"] + f["ms_per_window_input_quality"] + f["ms_per_window_label"]
    assert abs(parts - f["ms_per_window"]) < 1e-2
    assert f["windows"] == 146 and f["records"] == ["f362s"] and f["input_hz"] == 250.0
    assert f["label_filter"] == "LabelFilter" and f["threads"] == 1
    assert f["neurokit2_windows"] == 2 and 0.5 <= f["usable_fraction"] <= 1.0
    assert json.loads(capsys.readouterr().out) == doc


def test_bench_registry_modules_expose_run_bench():
    assert "filters" in BENCHES
    for module in BENCHES.values():
        assert callable(importlib.import_module(module).run_bench)


def test_batched_resampling_is_the_windowers_resampling():
    x = np.random.default_rng(0).normal(size=2500).cumsum()
    ours = resample_batch(np.stack([x, -x]), 250.0)
    ref = CausalResampler(250.0, 125.0).update(x)
    assert ours.shape == (2, 1250)
    np.testing.assert_allclose(ours[0], ref, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(ours[1], -ref, rtol=1e-9, atol=1e-9)
