"""The faust application: settings -> app, topics, the patients table and the agent.

``create_app(settings)`` builds a fresh app (no module-level globals), so tests and several workers
in one process each get their own. ``bpstream worker`` runs it.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

from ._agents import Processor, register_agents
from ._logs import where
from ._probes import install as install_probes
from ._probes import web_options
from bpstream.stream.core import Schedule
from ._seek_first import install as install_seek_first
from ._seek_first import needed as seek_first_needed
from bpstream.stream.config import Settings
from bpstream.stream.core import Pipeline, PipelineConfig
from ._topics import Topics, declare

__all__ = ["Service", "create_app", "pipeline_for"]


@dataclass
class Service:
    app: Any
    topics: Topics
    table: Any
    processor: Processor
    agent: Any
    metrics: Any = None  # _prometheus.ServiceMetrics when the web server is on (BPSTREAM_WEB_PORT)


def pipeline_for(settings: Settings) -> Pipeline:
    """The pipeline the worker runs: the configured methods (first is published) and arterial schedule."""
    return Pipeline(PipelineConfig(methods=tuple(settings.methods), arterial_schedule=Schedule.parse(settings.calibration),
                                   reorder_s=settings.reorder_s))


@functools.lru_cache(maxsize=1)
def _app_class() -> type:
    """faust's App, whose stop first writes every deferred patient state (the agent's ``bpstream_before_stop``):
    faust then waits for unacknowledged messages without a timeout, and its timers have stopped."""
    import faust

    class App(faust.App):
        async def on_stop(self) -> None:
            before = getattr(self, "bpstream_before_stop", None)
            if before is not None:
                try:
                    await before()
                except Exception as exc:  # noqa: BLE001 - the stop goes on; those messages come again elsewhere
                    logging.getLogger("bpstream.worker").error("writing deferred states at stop failed (%s)", where(exc))
            await super().on_stop()

    return App


def create_app(settings: Settings, pipeline: Pipeline | None = None, sinks: Any = None, **faust_options: Any) -> Service:
    """``sinks`` replaces the output topics (unit tests with ``test_context()``); see ``register_agents``."""
    options = dict(
        broker=settings.faust_broker,
        broker_credentials=settings.faust_credentials(),
        store=settings.store,
        datadir=settings.datadir,
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(0.5, settings.session_timeout_s / 5),
        consumer_auto_offset_reset="earliest",
        autodiscover=False,
        processing_guarantee=settings.processing_guarantee,
        producer_max_request_size=max(settings.max_chunk_bytes * 2, 1_048_576),
        # state changelog records are ~100 KB: batch them, or each costs one broker round trip
        producer_max_batch_size=1_048_576,
    )
    options.update(web_options(settings))  # off unless BPSTREAM_WEB_PORT is set
    options.update(faust_options)
    app = _app_class()(settings.app_id, **options)
    topics = declare(app, settings)
    table = app.Table("patients", key_type=bytes, value_type=bytes, default=None, partitions=settings.partitions,
                      help="per-patient step state (bpstream.stream.core._state_codec)")
    processor = Processor(settings, pipeline or pipeline_for(settings))
    agent = register_agents(app, topics, table, processor, sinks)
    metrics = install_probes(app, processor, table) if app.conf.web_enabled else None

    if seek_first_needed():
        @app.on_partitions_assigned.connect
        async def _seek_before_resume(sender: Any, assigned: Any = None, **kwargs: Any) -> None:
            # before recovery resumes the input partitions (see _seek_first)
            install_seek_first(app.consumer, (settings.topic_waveforms, settings.topic_commands))

    return Service(app, topics, table, processor, agent, metrics)
