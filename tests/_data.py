"""Where the shared PhysioNet data lives (read-only, never copied into the project)."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PN2015 = DATA / "physionet2015"
MIMIC = DATA / "mimic-samples"


def record(name: str) -> Path:
    path = PN2015 / name
    if not path.with_suffix(".hea").exists():
        pytest.fail(f"shared data missing: {path}.hea (tests read ../shared/data beside the checkout)")
    return path
