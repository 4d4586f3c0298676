"""The training-array cache (``build_arrays(..., cache)``) is keyed so that it is never reused across a change of
the record's files or of the code that decides its windows and labels."""

from __future__ import annotations

import os
from pathlib import Path

from bpstream.stream.records._dataset import _cache_key, code_digest, digest_files

ROOT = Path(__file__).resolve().parents[1]


def test_the_key_follows_every_file_of_the_record(tmp_path):
    for suffix in (".hea", ".mat"):
        (tmp_path / f"r1{suffix}").write_bytes(b"x")
    (tmp_path / "r10.hea").write_bytes(b"another record")
    key = _cache_key(tmp_path / "r1", "code")
    assert key.startswith("r1-") and key.endswith(".npz")
    assert _cache_key(tmp_path / "r1", "other code") != key
    os.utime(tmp_path / "r1.mat", (1, 1))  # only the signal file changed (the header did not)
    touched = _cache_key(tmp_path / "r1", "code")
    assert touched != key
    (tmp_path / "r10.mat").write_bytes(b"not r1's")
    assert _cache_key(tmp_path / "r1", "code") == touched  # another record's files are not r1's


def test_the_code_digest_covers_the_record_reader_filters_step_and_features():
    names = {f.relative_to(ROOT).as_posix() for f in digest_files()}
    assert {"stream/records/_records.py", "stream/records/_dataset.py", "stream/records/_stepped.py",
            "models/_features.py", "filters/_input_filter.py", "stream/core/_step.py"} <= names, sorted(names)
    assert len(code_digest()) == 12
