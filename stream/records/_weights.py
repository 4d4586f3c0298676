"""Population weights files (``bpstream train`` writes them, ``validate --folds`` and the bench read them): the
file half of the weights, whose bytes ``bpstream.models`` turns into a ``Population`` and back."""

from __future__ import annotations

from pathlib import Path

from bpstream.models import Population, default_population, population_from_bytes, population_to_bytes

__all__ = ["read_population", "write_population"]


def read_population(path: str | Path | None = None) -> Population:
    """The weights in the file at ``path`` (a new ``Population`` each call), or None: the weights shipped in
    the package (one shared, read-only ``Population``)."""
    if path is None:
        return default_population()
    return population_from_bytes(Path(path).read_bytes())


def write_population(pop: Population, path: str | Path) -> Path:
    """Write ``pop``'s weights, constants and meta to ``path`` (folders created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(population_to_bytes(pop))
    return path
