"""The worker's agent with faust's ``test_context()`` and the memory store (no broker).

Outputs go to in-memory sinks instead of topics; messages are put with their source topic name,
the way the worker receives them.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from faust.types import Message

from bpstream.stream.kafka._agents import Item, Processor
from bpstream.stream.kafka._codec import dumps, encode_waveform
from bpstream.stream.core._messages import Calibrate, ChunkMessage, WindowResult
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.kafka._schemas import command_doc
from bpstream.stream.config._settings import Settings
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.kafka.app import create_app, pipeline_for

from ._contracts import assert_valid
from ._data import record

T0 = 1_780_000_000.0
WAVES, COMMANDS = "bp.waveforms.v1", "bp.commands.v1"


class Sink:
    """An output topic in memory; every bpstream message sent to it must validate against its topic's JSON
    Schema (a FHIR resource, on the optional FHIR topic, is validated by test_fhir with fhir.resources)."""

    def __init__(self) -> None:
        self.docs: list[dict] = []

    async def send(self, key=None, value=None, headers=None) -> None:
        doc = json.loads(value)
        if "resourceType" not in doc:
            assert_valid(doc)
        self.docs.append(doc)


@pytest.fixture(scope="module")
def chunks():
    return list(iter_chunks(read_record(record("f362s")), 2.0, t0_s=T0))[:24]


async def put(agent, topic: str, key: bytes, value: bytes, partition: int = 0):
    """``agent.put`` with the source topic set (test_context otherwise names it ``<internal>``)."""
    channel = agent.stream().channel
    message = Message(topic=topic, partition=partition, offset=agent.sent_offset, timestamp=time.time(),
                      timestamp_type=0, headers=None, key=key, value=value, checksum=b"", serialized_key_size=0,
                      serialized_value_size=0, generation_id=agent.app.consumer_generation_id)
    await channel.put(await channel.decode(message))
    agent.sent_offset += 1
    async with agent.new_value_processed:
        await asyncio.wait_for(agent.new_value_processed.wait(), 30)


def run_agent(settings: Settings, script):
    """Run ``script(agent, service, sinks)`` inside the agent's test context."""
    sinks = {k: Sink() for k in ("estimates", "events", "deadletter")}

    async def main():
        service = create_app(settings, sinks=sinks)
        service.app.finalize()
        service.app.conf.store = "memory://"
        service.app.flow_control.resume()
        async with service.agent.test_context() as agent:
            await script(agent, service, sinks)

    asyncio.run(main())
    return sinks


def test_chunks_become_estimates_equal_to_the_in_process_step(chunks):
    settings = Settings(methods=("carry_forward",), calibration="once", batch_within_s=0.01)

    async def script(agent, service, sinks):
        for seq, chunk in enumerate(chunks):
            await put(agent, WAVES, b"p-1", encode_waveform("p-1", seq, chunk))
        assert service.table.get(b"p-1") is not None

    sinks = run_agent(settings, script)
    pipe = pipeline_for(settings)
    state, expected = None, []
    for seq, chunk in enumerate(chunks):
        state, out = pipe.step(state, ChunkMessage(seq, chunk))
        expected += [o for o in out if isinstance(o, WindowResult)]
    docs = sinks["estimates"].docs
    assert [d["seq"] for d in docs] == [w.seq for w in expected] and len(docs) == 20
    for d, w in zip(docs, expected):
        est = w.estimates["carry_forward"]
        assert d["validity"] == est.validity.value
        assert (d["sbp"] and d["sbp"]["value"]) == est.sbp_mmhg
    assert any(d["validity"] == "valid" for d in docs)  # calibrated at 30 s by the stream's ABP
    assert [e["type"] for e in sinks["events"].docs] == ["calibration_accepted"]
    assert not sinks["deadletter"].docs


def test_bad_message_is_dead_lettered_and_the_patient_goes_on(chunks):
    async def script(agent, service, sinks):
        await put(agent, WAVES, b"p-1", encode_waveform("p-1", 0, chunks[0]))
        before = service.table.get(b"p-1")
        await put(agent, WAVES, b"p-1", b"{oops")
        assert service.table.get(b"p-1") == before
        for seq in range(1, 6):
            await put(agent, WAVES, b"p-1", encode_waveform("p-1", seq, chunks[seq]))

    sinks = run_agent(Settings(methods=("carry_forward",), batch_within_s=0.01), script)
    (dead,) = sinks["deadletter"].docs
    assert dead["reason"] == "msg_not_json" and dead["source"]["topic"] == WAVES and dead["source"]["offset"] == 1
    assert len(sinks["estimates"].docs) == 2  # windows ending at 10 s and 12 s


def test_duplicate_chunk_is_ignored_and_leaves_the_state(chunks):
    async def script(agent, service, sinks):
        for seq in range(6):
            await put(agent, WAVES, b"p-1", encode_waveform("p-1", seq, chunks[seq]))
        before = service.table.get(b"p-1")
        await put(agent, WAVES, b"p-1", encode_waveform("p-1", 4, chunks[4]))
        assert service.table.get(b"p-1") == before

    sinks = run_agent(Settings(methods=("carry_forward",), batch_within_s=0.01), script)
    assert [e["type"] for e in sinks["events"].docs] == ["duplicate_ignored"]
    assert sinks["events"].docs[0]["detail"] == {"seq": 4}
    assert len(sinks["estimates"].docs) == 2 and not sinks["deadletter"].docs


def test_commands_wait_for_the_stream_then_calibrate_or_dead_letter(chunks):
    cal = dumps(command_doc("p-1", Calibrate("cuff-1", T0 + 13.0, 140.0, 85.0), T0))
    stranger = dumps(command_doc("nobody", Calibrate("cuff-2", T0 + 13.0, 140.0, 85.0), T0))

    async def script(agent, service, sinks):
        for seq in range(6):
            await put(agent, WAVES, b"p-1", encode_waveform("p-1", seq, chunks[seq]))
        await put(agent, COMMANDS, b"p-1", cal)
        await put(agent, COMMANDS, b"nobody", stranger)
        assert not sinks["events"].docs and not sinks["deadletter"].docs  # held for the waveforms
        for seq in range(6, 9):  # later waveforms of the partition release them, in order
            await put(agent, WAVES, b"p-1", encode_waveform("p-1", seq, chunks[seq]))

    sinks = run_agent(Settings(methods=("carry_forward",), batch_within_s=0.01), script)
    assert [d["reason"] for d in sinks["deadletter"].docs] == ["msg_unknown_patient"]
    accepted = [e for e in sinks["events"].docs if e["type"] == "calibration_accepted"]
    assert len(accepted) == 1 and accepted[0]["detail"]["measured_at"] == "2026-05-28T20:26:53.000000Z" and accepted[0]["detail"]["source"] == "cuff"
    last = sinks["estimates"].docs[-1]
    assert last["validity"] == "valid" and last["sbp"]["value"] == 140.0 and last["dbp"]["value"] == 85.0
    assert last["calibration"]["count"] == 1


def test_processor_chains_states_within_a_batch(chunks):
    settings = Settings(methods=("carry_forward",), state_every_chunks=1)  # state on every batch
    proc = Processor(settings, Pipeline(PipelineConfig(arterial_schedule=Schedule.parse("once"))), clock=lambda: T0)
    items = [Item(WAVES, 0, i, b"p-1", encode_waveform("p-1", i, c)) for i, c in enumerate(chunks[:6])]
    results = proc.process_batch(items)
    # one state carried through the batch and written once, on the patient's last message: the state
    # that processing the messages one at a time leaves
    assert [r.new_state is not None for r in results] == [False] * 5 + [True]
    alone, state = Processor(settings, Pipeline(PipelineConfig(arterial_schedule=Schedule.parse("once"))),
                             clock=lambda: T0), None
    for item in items:
        state = alone.process(Item(item.topic, item.partition, item.offset, item.key, item.value, state)).new_state or state
    assert results[-1].new_state == state
    sent = [json.loads(v) for r in results for kind, _, v in r.sends if kind == "estimates"]
    assert [d["seq"] for d in sent] == [1, 2]  # one state carried through the batch
    again = proc.process_batch([Item(WAVES, 0, 9, b"p-1", encode_waveform("p-1", 5, chunks[5]), results[-1].new_state)])
    assert again[0].new_state is None and json.loads(again[0].sends[0][2])["type"] == "duplicate_ignored"
    assert proc.counts["estimates"] == 2 and proc.counts["event:duplicate_ignored"] == 1
