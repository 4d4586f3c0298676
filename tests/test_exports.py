"""``__all__`` is honest (as httpx checks its own): every package exports exactly its public names, each one
resolves, and the names other packages use are the exported ones (tests/test_architecture.py)."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "bpstream.filters",
    "bpstream.models",
    "bpstream.stream",
    "bpstream.stream.core",
    "bpstream.stream.config",
    "bpstream.stream.records",
    "bpstream.stream.evaluation",
    "bpstream.stream.kafka",
    "bpstream.stream.bench",
    "bpstream.stream.cli",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_lists_exactly_the_public_names(name):
    pkg = importlib.import_module(name)
    exported = set(getattr(pkg, "__all__", ()))
    public = {m for m in dir(pkg) if not m.startswith("_") and m != "annotations"
              and not isinstance(getattr(pkg, m), types.ModuleType)}
    assert public - exported == set(), f"{name}: public but not in __all__"
    for member in sorted(exported):
        assert getattr(pkg, member) is not None  # lazy names resolve too
    assert len(exported) == len(pkg.__all__), f"{name}: a name listed twice"


def test_the_stream_api_names_the_core_and_one_exception_tree():
    import bpstream.stream as s

    assert {"Pipeline", "PipelineConfig", "PatientState", "Settings", "create_app"} <= set(s.__all__)
    errors = [getattr(s, n) for n in s.__all__ if isinstance(getattr(s, n), type) and issubclass(getattr(s, n), Exception)]
    assert len(errors) >= 12 and all(issubclass(e, s.BpstreamError) for e in errors)
    assert issubclass(s.ChunkError, ValueError) and issubclass(s.SettingsError, ValueError)
    assert issubclass(s.MessageError, ValueError) and issubclass(s.BrokerRefused, ConnectionError)
    for e in errors:  # the docstring draws every class of the tree
        assert e.__name__ in s.__doc__, e.__name__
