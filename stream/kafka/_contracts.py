"""The message contracts, generated from the wire models: one JSON Schema per topic and an AsyncAPI 3.0
document for the Kafka topics.

Shipped in the package under ``bpstream/stream/kafka/contracts/`` (``<topic>.json``, ``asyncapi.json``);
``bpstream schemas --out DIR`` writes them again from the models (a test checks the shipped files equal
what the models generate). The schemas are JSON Schema draft-07 (the version the AsyncAPI 3.0 payload
format names) and say what a consumer may rely on; the rules that need the worker's settings or clock
(time range, sampling-rate and chunk-length limits) or the samples (base64 content, finiteness,
equal durations) are in the descriptions and checked by the decoder.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from ._wire_in import CommandDoc, WaveformDoc
from ._wire_out import DeadLetterDoc, EstimateDoc, EventDoc
from ._wire_types import COMMANDS, DEADLETTER, ESTIMATES, EVENTS, PATIENT_ID_PATTERN, PATIENT_ID_RULE, WAVEFORMS

__all__ = ["TOPICS", "CONTRACTS_DIR", "ASYNCAPI_FILE", "json_schema", "asyncapi", "contract_files", "write_contracts"]

JSON_SCHEMA_DRAFT = "http://json-schema.org/draft-07/schema#"
PAYLOAD_FORMAT = "application/schema+json;version=draft-07"
KAFKA_BINDING = "0.5.0"
CONTRACTS_DIR = Path(__file__).with_name("contracts")
ASYNCAPI_FILE = "asyncapi.json"

# topic -> (model, the worker's action, channel id, what it carries)
TOPICS: dict[str, tuple[Any, str, str, str]] = {
    WAVEFORMS: (WaveformDoc, "receive", "waveforms", "one chunk of ECG + PPG (+ optional ABP) samples"),
    COMMANDS: (CommandDoc, "receive", "commands", "calibrate, reset and discharge commands"),
    ESTIMATES: (EstimateDoc, "send", "estimates", "one SBP/DBP/MAP estimate per window hop and patient"),
    EVENTS: (EventDoc, "send", "events", "command outcomes and step events"),
    DEADLETTER: (DeadLetterDoc, "send", "deadletter", "every message that failed to decode or validate"),
}


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[-1]} if isinstance(node.get("$ref"), str) else set()
        for v in node.values():
            found |= _refs(v)
        return found
    if isinstance(node, list):
        return set().union(*map(_refs, node)) if node else set()
    return set()


def json_schema(topic: str) -> dict:
    """The self-contained JSON Schema of ``topic``'s messages (the model's own definition at the root)."""
    model = TOPICS[topic][0]
    (root,), components = msgspec.json.schema_components([model], ref_template="#/definitions/{name}")
    if "$ref" in root:  # a Struct: its definition becomes the root (draft-07 ignores keywords beside $ref)
        root = components[root["$ref"].rsplit("/", 1)[-1]]
    needed, todo = set(), _refs(root)
    while todo:
        name = todo.pop()
        needed.add(name)
        todo |= _refs(components[name]) - needed
    doc = {"$schema": JSON_SCHEMA_DRAFT, "$id": f"{topic}.json", **root, "title": topic}
    definitions = {k: components[k] for k in sorted(needed) if components[k] is not root}
    if definitions:
        doc["definitions"] = definitions
    return doc


def asyncapi(examples: dict[str, list[tuple[str, dict]]] | None = None) -> dict:
    """The AsyncAPI 3.0 document of the worker (it receives the input topics and sends the output ones);
    payloads reference the JSON Schema files beside it, keys are the patient id."""
    from ._contract_examples import examples as example_messages

    examples = example_messages() if examples is None else examples
    channels, operations, messages = {}, {}, {}
    for topic, (_, action, cid, what) in TOPICS.items():
        key = ({"type": "string", "description": "the original message's key (UTF-8), whatever it was"}
               if topic == DEADLETTER else
               {"type": "string", "pattern": PATIENT_ID_PATTERN, "description": f"the patient id: {PATIENT_ID_RULE}"})
        messages[cid] = {
            "name": topic, "title": topic, "summary": what, "contentType": "application/json",
            "payload": {"schemaFormat": PAYLOAD_FORMAT, "schema": {"$ref": f"./{topic}.json"}},
            "bindings": {"kafka": {"key": key, "bindingVersion": KAFKA_BINDING}},
            "examples": [{"name": name, "payload": doc} for name, doc in examples.get(topic, [])],
        }
        channels[cid] = {
            "address": topic, "title": topic, "description": f"{what} (address: the default topic name; "
                                                            f"BPSTREAM_TOPIC_{cid.upper()} renames it)",
            "messages": {cid: {"$ref": f"#/components/messages/{cid}"}},
            "bindings": {"kafka": {"topic": topic, "partitions": 8, "replicas": 1, "bindingVersion": KAFKA_BINDING}},
        }
        operations[f"{action}{cid.capitalize()}"] = {
            "action": action, "channel": {"$ref": f"#/channels/{cid}"},
            "messages": [{"$ref": f"#/channels/{cid}/messages/{cid}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {"title": "bpstream worker", "version": "1",
                 "description": "Blood pressure estimated from ECG + PPG. Every topic has the same partition "
                                "count (BPSTREAM_PARTITIONS, default 8) and the same key, the patient id (UTF-8), so "
                                "one patient's messages share one partition number and stay in order. Messages "
                                "are JSON naming their schema and version in \"schema\"; consumers ignore unknown "
                                "fields. Generated from bpstream's wire models (bpstream schemas)."},
        "defaultContentType": "application/json",
        "servers": {"kafka": {"host": "localhost:9092", "protocol": "kafka",
                              "description": "any Apache Kafka compatible broker (BPSTREAM_BROKER)"}},
        "channels": channels, "operations": operations, "components": {"messages": messages},
    }


def _text(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def contract_files() -> dict[str, str]:
    """File name -> content of every contract file, as the models generate them now."""
    files = {f"{topic}.json": _text(json_schema(topic)) for topic in TOPICS}
    files[ASYNCAPI_FILE] = _text(asyncapi())
    return files


def write_contracts(out_dir: str | Path) -> list[Path]:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in contract_files().items():
        (out / name).write_text(text)
        written.append(out / name)
    return written
