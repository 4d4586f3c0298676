"""FHIR R4 output: every Observation the worker produces (real records through the real Processor and
step) parses and validates with ``fhir.resources`` (its R4B models: the library's default is R5; R4B
leaves Observation and Device as R4 has them) and meets the blood-pressure profile's rules, checked
here because the library checks types and structure only."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.observation import Observation  # the test extra

from bpstream.stream.kafka._agents import Item, Processor
from bpstream.stream.kafka._codec import encode_waveform
from bpstream.stream.kafka._fhir import REASON_EXTENSION, observation
from bpstream.stream.records._records import iter_chunks, read_record
from bpstream.stream.core._schedule import Schedule
from bpstream.stream.config._settings import Settings
from bpstream.stream.core._step import Pipeline, PipelineConfig
from bpstream.stream.cli import main
from bpstream.stream.kafka import render

from ._data import PN2015

T0 = 1_780_000_000.0
LOINC, MDC, UCUM = "http://loinc.org", "urn:iso:std:iso:11073:10101", "http://unitsofmeasure.org"
COMPONENTS = {"sbp": ("8480-6", "150017"), "dbp": ("8462-4", "150018"), "map": ("8478-0", "150019")}
UNCERTAINTY = "http://hl7.org/fhir/StructureDefinition/iso21090-uncertainty"
FHIR_STATUS = {"registered", "preliminary", "final", "amended", "corrected", "cancelled", "entered-in-error", "unknown"}


def _record(name: str) -> Path:
    path = PN2015 / name
    if not path.with_suffix(".hea").exists():
        pytest.skip(f"shared data missing: {path}.hea (tests read ../shared/data beside the checkout)")
    return path


def _codes(concept: dict, system: str) -> list[str]:
    return [c["code"] for c in concept.get("coding", []) if c.get("system") == system]


def check_bp_profile(obs: dict, doc: dict) -> None:
    """The FHIR blood-pressure / vital-signs profile rules this mapping must keep, against its estimate."""
    assert obs["resourceType"] == "Observation" and obs["status"] in FHIR_STATUS and obs["status"] == "preliminary"
    assert any("vital-signs" in _codes(c, "http://terminology.hl7.org/CodeSystem/observation-category")
               for c in obs["category"])
    assert _codes(obs["code"], LOINC) == ["85354-9"] and _codes(obs["code"], MDC) == ["150016"]
    assert obs["effectivePeriod"] == {"start": doc["window_start"], "end": doc["window_end"]}
    assert obs["subject"] and obs["method"]["text"] == "estimated from ECG and PPG"
    assert not [k for k in obs if k.startswith("value")]  # obs-7: the panel code is on no value of its own
    assert "dataAbsentReason" not in obs  # vs-2: the components carry it
    contained = {r["id"]: r for r in obs.get("contained", [])}
    assert obs["device"]["reference"].startswith("#") and contained[obs["device"]["reference"][1:]]["resourceType"] == "Device"
    assert contained["estimator"]["modelNumber"] == doc["model"]["name"]
    by_loinc = {_codes(c["code"], LOINC)[0]: c for c in obs["component"]}
    assert set(by_loinc) == {loinc for loinc, _ in COMPONENTS.values()}  # SBP and DBP slices required, MAP too
    for q, (loinc, mdc) in COMPONENTS.items():
        comp = by_loinc[loinc]
        assert _codes(comp["code"], MDC) == [mdc]
        if doc[q] is not None:
            assert doc[q]["mdc_code"] == int(mdc)  # the codes bp.estimates.v1 carries
        assert ("valueQuantity" in comp) != ("dataAbsentReason" in comp)  # vs-3 and obs-6
        if doc["validity"] == "valid":
            value = comp["valueQuantity"]
            assert value["system"] == UCUM and value["code"] == "mm[Hg]"
            assert value["value"] == pytest.approx(doc[q]["value"], abs=0.05)
            sd = {e["url"]: e for e in value.get("extension", [])}.get(UNCERTAINTY)
            assert (sd is None) == (doc[q]["sd"] is None)
            if sd is not None:
                assert sd["valueDecimal"] == pytest.approx(doc[q]["sd"], abs=0.005)
        else:  # no numbers for a window that is not valid, whatever the model had
            assert "valueQuantity" not in comp
            expected = "error" if doc["validity"] == "invalid" else "temp-unknown"
            assert _codes(comp["dataAbsentReason"], "http://terminology.hl7.org/CodeSystem/data-absent-reason") == [expected]
    if doc["validity"] != "valid":
        assert doc["validity"] in obs["note"][0]["text"]
        assert [e["valueCode"] for e in obs.get("extension", []) if e["url"] == REASON_EXTENSION] == doc["reasons"]
        assert all(r in obs["note"][0]["text"] for r in doc["reasons"])


def _worker_outputs(name: str, settings: Settings, n_chunks: int = 40) -> list[tuple[str, dict]]:
    """A real record through the worker's Processor (decode, step, encode), ``fusion`` published (it has an
    sd), arterial calibration once, estimates older than 30 s after it graded questionable."""
    config = PipelineConfig(methods=("fusion",), arterial_schedule=Schedule.parse("once"), questionable_after_s=30.0)
    proc = Processor(settings, Pipeline(config), clock=lambda: T0 + 400)
    state, out = None, []
    for seq, chunk in enumerate(list(iter_chunks(read_record(_record(name)), 2.0, t0_s=T0))[:n_chunks]):
        result = proc.process(Item(settings.topic_waveforms, 0, seq, name.encode(), encode_waveform(name, seq, chunk), state))
        state = result.new_state or state  # the table keeps its value until the worker writes a new one
        out += [(kind, json.loads(value)) for kind, _, value in result.sends]
    return out


@pytest.fixture(scope="module")
def worker_pairs() -> list[tuple[dict, dict]]:
    """(estimate document, FHIR Observation) as the worker sent them, for a clean and a lead-off record."""
    pairs = []
    for name in ("f362s", "b330s"):
        out = _worker_outputs(name, Settings(fhir_output=True))
        estimates = [d for k, d in out if k == "estimates"]
        fhir = [d for k, d in out if k == "fhir"]
        assert len(fhir) == len(estimates) > 0
        pairs += list(zip(estimates, fhir))
    return pairs


def test_every_worker_observation_validates_with_fhir_resources(worker_pairs):
    seen = {doc["validity"] for doc, _ in worker_pairs}
    assert {"valid", "uncalibrated", "invalid", "questionable"} <= seen
    for doc, obs in worker_pairs:
        parsed = Observation.model_validate(obs)  # raises on any structure or type error
        assert parsed.status == "preliminary" and parsed.contained[0].get_resource_type() == "Device"
        assert obs == observation(doc)  # the worker sends the pure mapping of the very document it published
        check_bp_profile(obs, doc)
    valid = [obs for doc, obs in worker_pairs if doc["validity"] == "valid"]
    assert all("extension" in c["valueQuantity"] for obs in valid for c in obs["component"])  # fusion has an sd


def test_ids_are_stable_per_window_and_distinct_across_windows(worker_pairs):
    ids = [obs["id"] for _, obs in worker_pairs]
    assert len(set(ids)) == len(ids)
    doc, obs = worker_pairs[0]
    assert observation(dict(doc, published_at="2030-01-01T00:00:00.000000Z"))["id"] == obs["id"]


def test_profile_check_catches_broken_resources(worker_pairs):
    """The checker above is not vacuous: each broken variant of a real Observation fails it."""
    doc, obs = next((d, o) for d, o in worker_pairs if d["validity"] == "valid")
    bad_doc, bad = next((d, o) for d, o in worker_pairs if d["validity"] == "invalid")

    def value_on_invalid(o):
        o["component"][0]["valueQuantity"] = {"value": 120.0, "system": UCUM, "code": "mm[Hg]"}

    breakages = [
        (obs, doc, lambda o: o.update(status="final")),
        (obs, doc, lambda o: o["component"][0]["valueQuantity"].update(code="mmHg")),
        (obs, doc, lambda o: o["component"].pop(1)),
        (obs, doc, lambda o: o["component"][0]["valueQuantity"].update(value=o["component"][0]["valueQuantity"]["value"] + 1)),
        (obs, doc, lambda o: o["code"]["coding"].pop(0)),
        (bad, bad_doc, value_on_invalid),
        (bad, bad_doc, lambda o: o.pop("note")),
    ]
    for original, d, breakage in breakages:
        broken = copy.deepcopy(original)
        breakage(broken)
        with pytest.raises((AssertionError, KeyError, IndexError)):
            check_bp_profile(broken, d)


def test_fhir_output_is_off_by_default_and_switched_by_the_environment(tmp_path):
    assert Settings().fhir_output is False and "fhir" not in Settings().topic_names()
    out = _worker_outputs("f362s", Settings(), n_chunks=8)
    assert out and {k for k, _ in out} <= {"estimates", "events"}
    on = Settings.from_env({"BPSTREAM_FHIR_OUTPUT": "true"})
    assert on.fhir_output and on.topic_names()["fhir"] == "bp.estimates.fhir.v1"
    assert Settings.from_env(on.to_env()) == on


def test_subject_reference_from_patient_id(worker_pairs):
    doc = worker_pairs[0][0]
    assert observation(doc)["subject"] == {"reference": f"Patient/{doc['patient_id']}"}
    # bpstream ids may hold '_' and ':', which a FHIR id may not: a logical reference by identifier then
    assert observation(dict(doc, patient_id="mrn:12_3"))["subject"] == {"identifier": {"value": "mrn:12_3"}}
    with pytest.raises(ValueError):
        observation(dict(doc, schema="bp.events.v1"))


def test_subject_by_identifier_in_the_configured_system(worker_pairs):
    """With BPSTREAM_FHIR_PATIENT_SYSTEM every subject is a logical reference in that system (a server that checks
    references accepts it without a Patient of that id), whatever the id's characters; the worker and tail use it."""
    from bpstream.stream.config import Settings, SettingsError
    from bpstream.stream.kafka._tail import render

    doc, system = worker_pairs[0][0], "urn:oid:1.2.36.146.595.217.0.1"
    want = {"identifier": {"system": system, "value": doc["patient_id"]}}
    assert observation(doc, system)["subject"] == want
    assert Observation.model_validate(observation(doc, system)).subject.identifier.system == system
    assert observation(dict(doc, patient_id="mrn:12_3"), system)["subject"]["identifier"]["value"] == "mrn:12_3"
    assert json.loads(render(doc, False, "fhir", system))["subject"] == want
    settings = Settings.from_env({"BPSTREAM_FHIR_OUTPUT": "true", "BPSTREAM_FHIR_PATIENT_SYSTEM": system})
    out = _worker_outputs("f362s", settings, n_chunks=8)
    subjects = [v["subject"] for k, v in out if k == "fhir"]
    assert subjects and all(s == {"identifier": {"system": system, "value": subjects[0]["identifier"]["value"]}}
                            for s in subjects)
    for bad in ("mrn", "http:/x", "urn:a b"):
        with pytest.raises(SettingsError, match="FHIR_PATIENT_SYSTEM"):
            Settings(fhir_patient_system=bad).validated()


def test_tail_format_fhir_prints_observations(worker_pairs, capsys):
    doc, obs = worker_pairs[-1]
    assert json.loads(render(doc, False, "fhir")) == obs
    assert json.loads(render(doc, False, "json")) == doc
    assert main(["tail", "--format", "fhir", "--events", "--broker", "127.0.0.1:1"]) == 2  # refused before any connection
    assert "estimates only" in capsys.readouterr().err


def test_the_agent_sends_the_fhir_json_to_its_own_topic():
    """The faust agent (test context, memory store): with FHIR output on, each estimate also goes to the
    ``fhir`` output (the bp.estimates.fhir.v1 topic in production), keyed by the patient."""
    import asyncio

    from bpstream.stream.kafka.app import create_app

    from .test_agents import Sink, put

    settings = Settings(methods=("carry_forward",), calibration="once", batch_within_s=0.01, fhir_output=True)
    chunks = list(iter_chunks(read_record(_record("f362s")), 2.0, t0_s=T0))[:20]
    sinks = {k: Sink() for k in ("estimates", "events", "deadletter", "fhir")}

    async def run() -> None:
        service = create_app(settings, sinks=sinks)
        assert service.topics.fhir is not None and service.topics.fhir.get_topic_name() == "bp.estimates.fhir.v1"
        service.app.finalize()
        service.app.conf.store = "memory://"
        service.app.flow_control.resume()
        async with service.agent.test_context() as agent:
            for seq, chunk in enumerate(chunks):
                await put(agent, settings.topic_waveforms, b"p-1", encode_waveform("p-1", seq, chunk))

    asyncio.run(run())
    estimates, fhir = sinks["estimates"].docs, sinks["fhir"].docs
    assert len(estimates) == len(fhir) >= 10 and {d["validity"] for d in estimates} >= {"uncalibrated", "valid"}
    for doc, obs in zip(estimates, fhir):
        Observation.model_validate(obs)
        assert obs == observation(doc)
        check_bp_profile(obs, doc)
