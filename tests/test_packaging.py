"""The built wheel holds every subpackage (the package-dir mapping is easy to get wrong)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _packages_on_disk() -> set[str]:
    found = set()
    for top in ("filters", "models", "stream"):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT)
            found.add("bpstream." + ".".join(rel.parts))
    return found


@pytest.mark.slow
def test_wheel_contains_every_subpackage(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    wheel = next(tmp_path.glob("bpstream-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for pkg in sorted(_packages_on_disk()):
        assert f"{pkg.replace('.', '/')}/__init__.py" in names, f"{pkg} missing from the wheel"
    assert "bpstream/stream/cli/_main.py" in names
    assert "bpstream/stream/kafka/kafka_pom.xml" in names  # bpstream broker --engine kafka fetches its jars with it
    from bpstream.stream.kafka._contracts import contract_files

    for name in contract_files():  # the generated contracts ship with the code
        assert f"bpstream/stream/kafka/contracts/{name}" in names, f"{name} missing from the wheel"
    assert any(n.endswith("entry_points.txt") for n in names)
