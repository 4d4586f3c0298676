"""Validate messages against the JSON Schemas shipped in the package (the generated contracts)."""

from __future__ import annotations

import json
from functools import lru_cache

import jsonschema

from bpstream.stream.kafka._contracts import CONTRACTS_DIR, TOPICS


@lru_cache(maxsize=None)
def validator(topic: str) -> jsonschema.Draft7Validator:
    schema = json.loads((CONTRACTS_DIR / f"{topic}.json").read_text())
    return jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)


def assert_valid(doc: dict) -> None:
    """``doc`` validates against the schema its ``"schema"`` field names (one of the five topics)."""
    assert doc.get("schema") in TOPICS, doc.get("schema")
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator(doc["schema"]).iter_errors(doc)]
    assert not errors, errors
