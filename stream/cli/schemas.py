"""``bpstream schemas --out DIR``: write the message contracts generated from the wire models.

One JSON Schema per topic (``bp.waveforms.v1.json`` ...) and the AsyncAPI 3.0 document
(``asyncapi.json``); the package ships the same files under ``bpstream/stream/kafka/contracts/``.
"""

from __future__ import annotations

import argparse

from bpstream.stream.kafka import write_contracts


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schemas", help="write the JSON Schemas of the topics and the AsyncAPI document")
    p.add_argument("--out", required=True,
                   help="output folder (the package ships the same files in bpstream/stream/kafka/contracts)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    for path in write_contracts(args.out):
        print(path)
    return 0
