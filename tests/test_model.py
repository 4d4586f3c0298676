"""Population network, features, training smoke, weight files, folds."""

from __future__ import annotations

from importlib import resources

import numpy as np
import pytest
import torch

from bpstream.models._features import FEATURE_NAMES, N_FEATURES, normalize_waveforms, window_features
from bpstream.models._net import PopulationNet, count_flops_per_window
from bpstream.models import default_population, population_from_bytes
from bpstream.models._population import Population
from bpstream.stream.records import read_population, write_population
from bpstream.models._train import TrainArrays, TrainConfig, calibrate, fold_of_record, record_block, train_population

from .test_model_fixtures import FS, windows


def test_budget_params_and_flops():
    net = PopulationNet()
    assert sum(p.numel() for p in net.parameters()) <= 1_000_000
    assert count_flops_per_window(net) <= 20_000_000


def test_delta_head_is_antisymmetric_and_zero_on_itself():
    torch.manual_seed(0)
    net = PopulationNet().eval()
    z = torch.randn(5, net.emb_dim + N_FEATURES)
    y = torch.full((5, 3), 100.0)
    with torch.no_grad():
        same, _ = net.delta(z, z, y, torch.zeros(5))
    assert torch.allclose(same, torch.zeros_like(same))
    # with the same context (anchor features), swapping the windows flips the sign
    ctx_same = z.clone()
    ctx_same[:, net.emb_dim :] = 0
    with torch.no_grad():
        h1 = net.delta_hidden(ctx_same, ctx_same.flip(0), y)
        h2 = net.delta_hidden(ctx_same.flip(0), ctx_same, y)
    assert torch.allclose(h1, -h2, atol=1e-6)
    with torch.no_grad():  # and so does the change the head predicts
        ab, _ = net.delta(ctx_same, ctx_same.flip(0), y, torch.ones(5))
        ba, _ = net.delta(ctx_same.flip(0), ctx_same, y, torch.ones(5))
    assert torch.allclose(ab, -ba, atol=1e-5) and not torch.allclose(ab, torch.zeros_like(ab))


def test_features_find_heart_rate_and_pulse_arrival_on_simulated_signals():
    import neurokit2 as nk

    for hr in (60, 100):
        ws = windows(3, seed=5, heart_rate=hr)
        f = window_features(np.stack([w.ecg for w in ws]), np.stack([w.ppg for w in ws]), fs_hz=FS)
        raw_hr_ecg = f[:, FEATURE_NAMES.index("hr_ecg_bpm")] * 20.0 + 85.0
        raw_hr_ppg = f[:, FEATURE_NAMES.index("hr_ppg_bpm")] * 20.0 + 85.0
        for k, w in enumerate(ws):  # oracle: neurokit2's own detectors on the same window
            r = nk.ecg_peaks(w.ecg, sampling_rate=int(FS))[1]["ECG_R_Peaks"]
            p = nk.ppg_findpeaks(nk.ppg_clean(w.ppg, sampling_rate=int(FS)), sampling_rate=int(FS))["PPG_Peaks"]
            assert abs(raw_hr_ecg[k] - 60.0 / np.median(np.diff(r) / FS)) < 3, raw_hr_ecg
            assert abs(raw_hr_ppg[k] - 60.0 / np.median(np.diff(p) / FS)) < 3, raw_hr_ppg
        pat_ms = f[:, FEATURE_NAMES.index("pat_ms")] * 80.0 + 250.0
        assert np.all((pat_ms > 150) & (pat_ms < 600)), pat_ms


def test_features_survive_flat_and_nan_input():
    flat = np.zeros((2, 1250))
    f = window_features(flat, flat, fs_hz=FS)
    assert f.shape == (2, N_FEATURES) and np.isfinite(f).all()
    bad = np.full((1, 1250), np.nan)
    assert np.isfinite(window_features(bad, bad, fs_hz=FS)).all()
    assert np.isfinite(normalize_waveforms(bad, bad)).all()


def _toy_arrays(n_records=6, per=10, seed=0) -> TrainArrays:
    rng = np.random.default_rng(seed)
    xs, fs, ys, rec, ts = [], [], [], [], []
    base = windows(per, seed=6)
    for r in range(n_records):
        level = 100 + 10 * r
        for k, w in enumerate(base):
            xs.append(normalize_waveforms(w.ecg, w.ppg)[0])
            f = window_features(w.ecg, w.ppg, fs_hz=FS)[0]
            f[0] = 0.1 * k  # a feature that tracks the within-record change
            fs.append(f)
            ys.append([level + 3 * k, level / 2 + k, level * 0.7 + 2 * k])
            rec.append(r)
            ts.append(10.0 + 2 * k)
    return TrainArrays(np.stack(xs).astype(np.float16), np.stack(fs).astype(np.float32),
                       np.asarray(ys, np.float32) + rng.normal(0, 0.5, (len(ys), 3)).astype(np.float32),
                       np.asarray(rec), np.asarray(ts, np.float32), np.ones(len(ys), np.float32), [f"r{r}" for r in range(n_records)])


def test_training_is_deterministic_and_reduces_delta_error():
    arr = _toy_arrays()
    cfg = TrainConfig(steps=40, records_per_batch=4, windows_per_record=6, seed=1)
    state = torch.get_rng_state()
    a = train_population(arr, cfg)
    assert torch.equal(torch.get_rng_state(), state)  # seeded in a fork: the caller's generator is untouched
    b = train_population(arr, cfg)
    for pa, pb in zip(a.state_dict().values(), b.state_dict().values()):
        assert torch.equal(pa, pb)
    consts = calibrate(a, arr, anchor_after_s=10.0)
    assert set(consts) >= {"abs_sd_scale", "delta_gain", "delta_sd_scale"}
    assert all(0.0 <= g <= 1.0 for g in consts["delta_gain"])
    # the delta head learned the within-record change: error well below the same net after one step
    one = train_population(arr, TrainConfig(steps=1, records_per_batch=4, windows_per_record=6, seed=1))
    trained, start = _delta_mae(a, arr), _delta_mae(one, arr)
    assert (trained < 0.8 * start).all(), (trained, start)


def _delta_mae(net, arr) -> np.ndarray:
    """MAE per quantity of the delta head's change from each record's first window to its later ones."""
    from bpstream.models._train import _by_record, embed_all

    net.eval()
    with torch.no_grad():
        z, y, t = embed_all(net, arr.x, arr.feats), torch.from_numpy(arr.y), torch.from_numpy(arr.t_s)
        errs = []
        for g in _by_record(arr):
            a, rest = g[0], g[1:]
            d, _ = net.delta(z[rest], z[a].expand(len(rest), -1), y[a].expand(len(rest), -1), t[rest] - t[a])
            errs.append((d - (y[rest] - y[a])).abs())
    return torch.cat(errs).mean(0).numpy()


def test_weights_round_trip(tmp_path):
    torch.manual_seed(0)
    pop = Population(PopulationNet(), {"delta_gain": [0.5, 0.4, 0.3]}, {"train_records": ["a1"]})
    path = write_population(pop, tmp_path / "w.pt")
    back = read_population(path)
    assert back.constants["delta_gain"] == [0.5, 0.4, 0.3] and back.meta["train_records"] == ["a1"]
    for k, v in pop.net.state_dict().items():
        assert torch.equal(v, back.net.state_dict()[k])
    with pytest.raises(ValueError):
        population_from_bytes(b"not a weights file")


def test_shipped_weights_load_through_importlib_resources():
    res = resources.files("bpstream.models").joinpath("weights", "population.pt")
    assert res.is_file(), "shipped weights missing from the package"
    pop = read_population(None)
    assert pop is default_population()  # read once, shared read-only
    assert sum(p.numel() for p in pop.net.parameters()) <= 1_000_000
    assert len(res.read_bytes()) < 2_000_000
    card = resources.files("bpstream.models").joinpath("weights", "population.json")
    assert card.is_file()


def test_folds_are_patient_disjoint_blocks():
    names = ["a103l", "a142s", "a152s", "b216s", "f362s", "v370s", "v371s", "t700s", "b455l"]
    blocks = [record_block(n) for n in names]
    assert record_block("a142s") == 2 and record_block("a152s") == 3
    folds = {n: fold_of_record(n, blocks, 3) for n in names}
    for n1 in names:
        for n2 in names:
            if record_block(n1) == record_block(n2):
                assert folds[n1] == folds[n2]
    assert set(folds.values()) == {0, 1, 2}


def test_bench_model_reports_the_three_numbers(tmp_path):
    import argparse

    from bpstream.stream.bench._bench_model import run_bench

    from ._data import PN2015

    torch.manual_seed(0)
    weights = write_population(Population(PopulationNet()), tmp_path / "w.pt")
    args = argparse.Namespace(data=str(PN2015), records="f362s", model_weights=str(weights), model_repeats=1)
    doc = run_bench(args)["model"]
    assert doc["infer_ms_per_window"] > 0 and doc["ttt_update_ms_p99"] > 0
    assert 0 < doc["state_bytes"] <= 64 * 1024


@pytest.mark.slow
def test_wheel_ships_the_weights(tmp_path):
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(tmp_path), str(root)], check=True)
    (wheel,) = tmp_path.glob("bpstream-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "bpstream/models/weights/population.pt" in names
    assert "bpstream/models/weights/population.json" in names


def _feature_arrays(signal_mmhg_per_unit: float, seed: int = 0) -> TrainArrays:
    from bpstream.models._features import N_FEATURES as F

    rng = np.random.default_rng(seed)
    feats, ys, rec, ts = [], [], [], []
    for r in range(12):
        walk = np.cumsum(rng.normal(0, 0.3, (40, F)), axis=0).astype(np.float32)
        base = rng.normal(0, 1, F).astype(np.float32)
        for k in range(40):
            f = base + walk[k]
            y = 120 + 10 * r + signal_mmhg_per_unit * walk[k, 0] + rng.normal(0, 2.0)
            feats.append(f)
            ys.append([y, y / 2, y * 0.7])
            rec.append(r)
            ts.append(10.0 + 5 * k)
    n = len(ys)
    return TrainArrays(np.zeros((n, 2, 8), np.float16), np.asarray(feats), np.asarray(ys, np.float32),
                       np.asarray(rec), np.asarray(ts, np.float32), np.ones(n, np.float32), [f"r{r}" for r in range(12)])


def test_feature_delta_learns_a_planted_relation_and_stays_small_without_one():
    from bpstream.models._dynamics import fit_feature_delta

    w = np.asarray(fit_feature_delta(_feature_arrays(6.0))["feat_delta_w"])
    assert abs(w[0, 0] - 6.0) < 1.5 and np.all(np.abs(w[0, 1:]) < 1.0)
    w0 = np.asarray(fit_feature_delta(_feature_arrays(0.0, seed=1))["feat_delta_w"])
    assert np.all(np.abs(w0) < 1.0)


def test_train_command_smoke_folds_layout(tmp_path):
    """CI-sized: two records, a few steps; writes fold weights and folds.json that validate can read."""
    import json

    from bpstream.stream.cli import main
    from bpstream.stream.records._folds import load_folds

    from ._data import PN2015

    out = tmp_path / "folds"
    rc = main(["train", str(PN2015), "--records", "a555l,f362s", "--folds", "2", "--out", str(out),
               "--steps", "3", "--threads", "1", "--cache", ""])
    assert rc == 0
    doc = json.loads((out / "folds.json").read_text())
    assert doc["k"] == 2 and sorted(f["weights"] for f in doc["folds"]) == ["fold0.pt", "fold1.pt"]
    where = load_folds(out)
    assert set(where) == {"a555l", "f362s"} and where["a555l"] != where["f362s"]
    for f in doc["folds"]:  # a fold's test records never appear in its training records
        assert not set(f["test_records"]) & set(f["train_records"])
        assert read_population(out / f["weights"]).meta["train_windows"] > 0


def test_model_estimators_name_their_exact_weights():
    import hashlib
    from importlib import resources

    from bpstream.models import make_estimator
    from bpstream.stream.kafka._processor import _model_info

    shipped = resources.files("bpstream.models").joinpath("weights", "population.pt").read_bytes()
    digest = hashlib.sha256(shipped).hexdigest()
    for method in ("frozen", "offset", "ttt"):
        assert make_estimator(method).weights_sha256 == digest
    assert _model_info("ttt")["weights_sha256"] == digest  # published in every bp.estimates.v1 message
