"""The folds file ``bpstream train --folds K`` writes: which fold model held out which record."""

from __future__ import annotations

import json
from pathlib import Path

from bpstream.stream.core import BpstreamError

__all__ = ["FOLDS_FILE", "load_folds"]

FOLDS_FILE = "folds.json"


def load_folds(folds_dir: str | Path) -> dict[str, Path]:
    """record name -> weights file of the fold that held it out (for ``validate --folds DIR``)."""
    folds_dir = Path(folds_dir)
    try:
        doc = json.loads((folds_dir / FOLDS_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise BpstreamError(f"cannot read {folds_dir / FOLDS_FILE}: {exc}") from exc
    out: dict[str, Path] = {}
    for f in doc["folds"]:
        for name in f["test_records"]:
            out[name] = folds_dir / f["weights"]
    return out
