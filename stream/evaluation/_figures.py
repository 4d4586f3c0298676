"""matplotlib figures drawn through the Agg canvas directly (no pyplot, no global backend switch, no display);
matplotlib is imported only when a figure is made."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["QUANTITIES", "figure", "save"]

QUANTITIES = (("sbp", "SBP"), ("dbp", "DBP"), ("map", "MAP"))


def figure(n_rows: int, n_cols: int, size: tuple[float, float]) -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    return fig, axes


def save(fig: Any, path_png: str | Path) -> Path:
    path = Path(path_png)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    return path
