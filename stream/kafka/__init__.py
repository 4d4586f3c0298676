"""bpstream.stream.kafka: the faust app and everything that talks to a broker or a consumer of its topics."""

from ._apache_kafka import ApacheKafka, KAFKA_VERSION, KafkaUnavailable, cache_dir, fetch_jars, unavailable
from ._board_html import CSP, page, tiles_html, tiles_json
from ._board_server import Board, serve, is_loopback
from ._board_state import BoardState
from ._brokers import ENGINES, choose_engine, make_broker
from ._codec import decode_waveform, dumps, encode_channel, encode_waveform
from ._commands import send_command
from ._contracts import write_contracts
from ._fhir import observation
from ._kafka_validate import validate_via_kafka
from ._logs import logging_config
from ._publish import adc_gains, replay
from ._schemas import WAVEFORMS, command_doc, from_iso, to_iso
from ._tail import FORMATS, documents, format_estimate, format_event, render
from ._tansu import Tansu, TansuNotFound
from ._topics import BrokerRefused, TopicsMismatch, consumer, ensure_topics, has_transactions, producer, wait_for_broker
from .app import create_app

__all__ = [
    "ApacheKafka",
    "Board",
    "BoardState",
    "BrokerRefused",
    "CSP",
    "ENGINES",
    "FORMATS",
    "KAFKA_VERSION",
    "KafkaUnavailable",
    "Tansu",
    "TansuNotFound",
    "TopicsMismatch",
    "WAVEFORMS",
    "adc_gains",
    "cache_dir",
    "choose_engine",
    "command_doc",
    "consumer",
    "create_app",
    "decode_waveform",
    "documents",
    "dumps",
    "encode_channel",
    "encode_waveform",
    "ensure_topics",
    "fetch_jars",
    "format_estimate",
    "format_event",
    "from_iso",
    "has_transactions",
    "is_loopback",
    "logging_config",
    "make_broker",
    "observation",
    "page",
    "producer",
    "render",
    "replay",
    "send_command",
    "serve",
    "tiles_html",
    "tiles_json",
    "to_iso",
    "unavailable",
    "validate_via_kafka",
    "wait_for_broker",
    "write_contracts",
]
