"""A ``bp.estimates.v1`` document -> a FHIR R4 ``Observation`` (vital-signs blood-pressure profile).

Pure: a decoded estimate document in, a JSON-ready dict out (no IO, no clock). ``bpstream tail
--format fhir`` prints it; the worker also sends it to ``bp.estimates.fhir.v1`` when
``BPSTREAM_FHIR_OUTPUT`` is on.

The resource follows the FHIR Blood Pressure profile (http://hl7.org/fhir/StructureDefinition/bp,
derived from the vital-signs profile):

- ``status`` ``preliminary``: an estimate, never a measurement of record.
- ``category`` vital-signs; ``code`` LOINC 85354-9 (blood pressure panel), components LOINC 8480-6
  (systolic), 8462-4 (diastolic) and 8478-0 (mean), values in UCUM ``mm[Hg]``.
- ISO/IEEE 11073-10101 codes as additional codings (system ``urn:iso:std:iso:11073:10101``, the
  system FHIR uses for MDC codes). bpstream's estimate is derived from ECG and PPG, not read from an
  arterial line or a cuff, so it carries the *generic* blood-pressure codes of IEEE 11073-10101
  (partition 2, SCADA): MDC_PRESS_BLD 150016 (2 * 65536 + 18944), MDC_PRESS_BLD_SYS 150017,
  MDC_PRESS_BLD_DIA 150018, MDC_PRESS_BLD_MEAN 150019, the codes ``bp.estimates.v1`` already carries
  (``bpstream.stream.kafka._schemas.QUANTITIES``). The arterial-line codes (MDC_PRESS_BLD_ART 150032,
  _SYS 150033, _DIA 150034, _MEAN 150035) and the non-invasive ones (MDC_PRESS_BLD_NONINV 150020,
  _SYS 150021, ...; the HL7 example ``observation-example-compound-numeric-blood-pressure``) would
  claim a measurement method that was not used.
- ``method.text`` "estimated from ECG and PPG"; the model as a contained plain R4 ``Device`` (name,
  software version, weights hash) referenced by ``Observation.device``. The Point-of-Care Device IG's
  Device profiles describe a physical monitor's MDS/VMD/channel tree with MDC device-type codes; a
  software estimator fits none of them, so only its idea is kept: the producing system is a Device.
- The 1-sigma uncertainty of each value as the ``iso21090-uncertainty`` extension on its
  ``valueQuantity`` (the 90 % interval is value +- 1.645 x uncertainty) with ``iso21090-uncertaintyType``
  ``N`` (normal distribution; code system http://hl7.org/fhir/probability-distribution-type).
- A window whose estimate is not ``valid`` (invalid input, uncalibrated, calibrating, questionable)
  has NO values: each component carries ``dataAbsentReason`` (``error`` for rejected input,
  ``temp-unknown`` while a calibration is missing or old) and the validity and quality reasons are in
  ``note`` and in one ``valueCode`` extension per reason.
- ``subject``: with ``patient_system`` (``BPSTREAM_FHIR_PATIENT_SYSTEM``, the URI of the hospital's patient
  identifier system, e.g. its MRN namespace) always a logical reference by identifier with that system, which
  a server accepts without a Patient resource of that id. Without it, ``Patient/<patient_id>`` when the id is
  a valid FHIR id (``[A-Za-z0-9.-]{1,64}``; a server that checks references refuses it unless that Patient
  exists), else a logical reference by identifier without a system (ids may also hold ``_`` and ``:``).
- ``id``: a UUID derived from the patient id and the estimate ``seq`` (so a window published again,
  after a failover, gets the same id: an idempotent ``PUT``).
"""

from __future__ import annotations

import enum
import re
import uuid
from typing import Any, Mapping

from bpstream.models import Validity

from ._schemas import ESTIMATES, QUANTITIES, UNIT_MMHG

__all__ = ["AbsentReason", "observation", "absent_reason", "subject", "REASON_EXTENSION"]

LOINC = "http://loinc.org"
MDC = "urn:iso:std:iso:11073:10101"
UCUM = "http://unitsofmeasure.org"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
UNCERTAINTY = "http://hl7.org/fhir/StructureDefinition/iso21090-uncertainty"
UNCERTAINTY_TYPE = "http://hl7.org/fhir/StructureDefinition/iso21090-uncertaintyType"
BP_PROFILE = "http://hl7.org/fhir/StructureDefinition/bp"
# bpstream's own extension: one per validity/quality reason, valueCode = the reason's wire name
REASON_EXTENSION = "urn:bpstream:fhir:StructureDefinition:quality-reason"
METHOD_TEXT = "estimated from ECG and PPG"
_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:bpstream:bp.estimates.v1")
_FHIR_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")

PANEL = {"loinc": "85354-9", "loinc_display": "Blood pressure panel with all children optional",
         "mdc_code": 150016, "mdc_ref_id": "MDC_PRESS_BLD", "text": "Blood pressure (estimated from ECG and PPG)"}
DISPLAY = {"sbp": "Systolic blood pressure", "dbp": "Diastolic blood pressure", "map": "Mean blood pressure"}


class AbsentReason(str, enum.Enum):
    """Why a component has no value (FHIR data-absent-reason codes used here)."""

    ERROR = "error"  # the input failed the quality filters: no trustworthy value exists for the window
    TEMP_UNKNOWN = "temp-unknown"  # a value will exist again after a (new) calibration
    UNKNOWN = "unknown"  # a valid estimate without this quantity


_ABSENT_DISPLAY = {AbsentReason.ERROR: "Error", AbsentReason.TEMP_UNKNOWN: "Temporarily Unknown",
                   AbsentReason.UNKNOWN: "Unknown"}


def absent_reason(validity: Validity) -> AbsentReason:
    """The data-absent reason of a component under an estimate of this validity."""
    if validity == Validity.INVALID:
        return AbsentReason.ERROR
    if validity in (Validity.UNCALIBRATED, Validity.CALIBRATING, Validity.QUESTIONABLE):
        return AbsentReason.TEMP_UNKNOWN
    return AbsentReason.UNKNOWN


def _coding(system: str, code: Any, display: str) -> dict:
    return {"system": system, "code": str(code), "display": display}


def _code(quantity: str) -> dict:
    q = QUANTITIES[quantity]
    return {"coding": [_coding(LOINC, q["loinc"], DISPLAY[quantity]), _coding(MDC, q["mdc_code"], q["mdc_ref_id"])],
            "text": DISPLAY[quantity]}


def _value(doc_q: Mapping[str, Any]) -> dict:
    value = {"value": round(float(doc_q["value"]), 1), "unit": "mmHg", "system": UCUM, "code": UNIT_MMHG}
    sd = doc_q.get("sd")
    if sd is not None:
        value["extension"] = [{"url": UNCERTAINTY, "valueDecimal": round(float(sd), 2)},
                              {"url": UNCERTAINTY_TYPE, "valueCode": "N"}]
    return value


def _component(quantity: str, doc_q: Mapping[str, Any] | None, validity: Validity) -> dict:
    component: dict[str, Any] = {"code": _code(quantity)}
    if validity == Validity.VALID and doc_q is not None and doc_q.get("value") is not None:
        component["valueQuantity"] = _value(doc_q)
    else:
        why = absent_reason(validity)
        component["dataAbsentReason"] = {"coding": [_coding(DATA_ABSENT, why.value, _ABSENT_DISPLAY[why])],
                                         "text": f"estimate {validity.value}"}
    return component


def subject(patient_id: str, patient_system: str | None = None) -> dict:
    """A logical reference by identifier in ``patient_system``; without one, ``Patient/<id>`` for an id FHIR
    accepts, else a logical reference by identifier alone."""
    if patient_system:
        return {"identifier": {"system": patient_system, "value": patient_id}}
    if _FHIR_ID.match(patient_id):
        return {"reference": f"Patient/{patient_id}"}
    return {"identifier": {"value": patient_id}}


def _device(model: Mapping[str, Any]) -> dict:
    name = str(model.get("name") or "unknown")
    device: dict[str, Any] = {
        "resourceType": "Device", "id": "estimator",
        "deviceName": [{"name": f"bpstream {name}", "type": "model-name"}],
        "modelNumber": name,
        "type": {"text": "blood pressure estimator (software, ECG + PPG)"},
    }
    versions = [{"type": {"text": "software"}, "value": str(model["version"])}] if model.get("version") else []
    if model.get("weights_sha256"):
        versions.append({"type": {"text": "weights-sha256"}, "value": str(model["weights_sha256"])})
    if versions:
        device["version"] = versions
    return device


def observation(doc: Mapping[str, Any], patient_system: str | None = None) -> dict:
    """The FHIR R4 Observation (a JSON-ready dict) of one ``bp.estimates.v1`` document; ``patient_system``: see
    ``subject``."""
    if doc.get("schema") != ESTIMATES:
        raise ValueError(f"not a {ESTIMATES} document")
    validity = Validity(doc["validity"])
    reasons = [str(r) for r in doc.get("reasons") or ()]
    obs: dict[str, Any] = {
        "resourceType": "Observation",
        "id": str(uuid.uuid5(_ID_NAMESPACE, f"{doc['patient_id']}\x00{doc['seq']}")),
        "meta": {"profile": [BP_PROFILE]},
        "contained": [_device(doc.get("model") or {})],
        "status": "preliminary",
        "category": [{"coding": [_coding(CATEGORY, "vital-signs", "Vital Signs")], "text": "Vital Signs"}],
        "code": {"coding": [_coding(LOINC, PANEL["loinc"], PANEL["loinc_display"]),
                            _coding(MDC, PANEL["mdc_code"], PANEL["mdc_ref_id"])], "text": PANEL["text"]},
        "subject": subject(str(doc["patient_id"]), patient_system),
        "effectivePeriod": {"start": doc["window_start"], "end": doc["window_end"]},
        "method": {"text": METHOD_TEXT},
        "device": {"reference": "#estimator"},
        "component": [_component(q, doc.get(q), validity) for q in ("sbp", "dbp", "map")],
    }
    if doc.get("published_at"):
        obs["issued"] = doc["published_at"]
    if reasons or validity != Validity.VALID:
        obs["extension"] = [{"url": REASON_EXTENSION, "valueCode": r} for r in reasons]
        obs["note"] = [{"text": f"bpstream validity: {validity.value}"
                                + (f"; reasons: {', '.join(reasons)}" if reasons else "")}]
        if not obs["extension"]:
            del obs["extension"]
    return obs
