"""The conformance samples through process_message: stored with the right codes and units, AA
only for what is stored, the invalid one AE with nothing stored, repeats stored once."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.monitoring.ingest import process_message
from ketasafe.monitoring.models import InboundMessage, Observation

from .helpers import ack_code, ack_fields, sample

pytestmark = pytest.mark.django_db

VALID = ["ipf_pcd01_bp_request.hl7", "ipf_continua_wan_bp.hl7", "ipf_continua_wan_oximeter.hl7",
         "python_hl7_normative_lab_oru_v24.hl7"]


def values(kind: str) -> list[tuple[str, Decimal, str]]:
    return [(o.loinc, o.value, o.unit) for o in Observation.objects.filter(kind=kind)]


@pytest.mark.parametrize("name", VALID)
def test_each_valid_sample_is_stored_once_with_one_audit_entry_and_acknowledged_aa(name: str) -> None:
    raw = sample(name)
    ack = process_message(raw)
    assert ack_code(ack) == "AA"
    assert InboundMessage.objects.count() == 1
    message = InboundMessage.objects.get()
    obx_count = sum(1 for line in raw.replace(b"\r\n", b"\r").split(b"\r") if line.startswith(b"OBX|"))
    assert message.observations.count() == obx_count  # every OBX stored as received
    assert AuditEntry.objects.filter(object_type="monitoring.InboundMessage", object_id=str(message.pk),
                                     actor="system:mllp").count() == 1


@pytest.mark.parametrize("name", ["ipf_pcd01_bp_request.hl7", "ipf_continua_wan_bp.hl7"])
def test_blood_pressure_samples_map_to_loinc_and_ucum(name: str) -> None:
    process_message(sample(name))
    assert values("systolic") == [("8480-6", Decimal(120), "mm[Hg]")]
    assert values("diastolic") == [("8462-4", Decimal(80), "mm[Hg]")]
    assert values("map") == [("8478-0", Decimal(100), "mm[Hg]")]
    panel = Observation.objects.get(raw_code="150020")
    assert (panel.loinc, panel.kind, panel.value) == ("85354-9", "", None)
    assert panel.raw_code_system == "MDC" and not panel.unmapped


def test_oximeter_sample_stores_spo2_in_percent_and_keeps_the_waveform_as_received() -> None:
    process_message(sample("ipf_continua_wan_oximeter.hl7"))
    assert values("spo2") == [("2708-6", Decimal("80.5"), "%")]
    pleth = Observation.objects.get(raw_code="150452")
    assert pleth.value is None and pleth.unmapped and pleth.raw_value_type == "NA"
    assert pleth.raw_value.startswith("12^123^24")


def test_lab_sample_codes_are_kept_unmapped_never_guessed() -> None:
    ack = process_message(sample("python_hl7_normative_lab_oru_v24.hl7"))
    assert ack_code(ack) == "AA"
    rows = list(Observation.objects.order_by("id"))
    assert [o.raw_code for o in rows] == ["1554-5", "1553-5"]
    assert all(o.unmapped and o.kind == "" and o.value is None for o in rows)
    assert "unsupported_value_type" in rows[1].flags
    assert rows[0].raw_unit == "mg/dl"


def test_invalid_glucose_sample_is_answered_ae_naming_the_problem_and_nothing_is_stored() -> None:
    audit_before = AuditEntry.objects.count()
    ack = process_message(sample("ipf_continua_wan_glucose_INVALID.hl7"))
    fields = ack_fields(ack)
    assert fields[1] == "AE"
    assert fields[2] == "MSGID1234"
    assert "OBX-2" in fields[3]
    assert b"ERR|" in ack
    assert InboundMessage.objects.count() == 0
    assert Observation.objects.count() == 0
    assert AuditEntry.objects.count() == audit_before


def test_a_repeated_message_is_acknowledged_aa_again_and_stored_once() -> None:
    raw = sample("ipf_pcd01_bp_request.hl7")
    first, second = process_message(raw), process_message(raw)
    assert ack_code(first) == ack_code(second) == "AA"
    assert InboundMessage.objects.count() == 1
    assert Observation.objects.count() == 5


def test_same_control_id_from_another_sender_is_a_different_message() -> None:
    raw = sample("ipf_pcd01_bp_request.hl7")
    process_message(raw)
    other = raw.replace(b"AcmeInc^ACDE48234567ABCD", b"OtherCo^FFFF48234567ABCD")
    assert ack_code(process_message(other)) == "AA"
    assert InboundMessage.objects.count() == 2


@pytest.mark.parametrize("name", VALID + ["ipf_continua_wan_glucose_INVALID.hl7"])
def test_ack_echoes_msh10_in_msa2(name: str) -> None:
    raw = sample(name)
    control_id = raw.replace(b"\r\n", b"\r").split(b"\r")[0].split(b"|")[9].decode()
    assert ack_fields(process_message(raw))[2] == control_id


def test_data_for_no_known_chair_or_patient_is_stored_unassigned_and_acknowledged() -> None:
    ack = process_message(sample("ipf_pcd01_bp_request.hl7"))
    assert ack_code(ack) == "AA"
    assert not Observation.objects.exclude(session=None).exists()
    assert not Observation.objects.exclude(patient=None).exists()
    assert InboundMessage.objects.get().patient_identifier == "789567"


def test_not_hl7_gets_ar_and_nothing_is_stored() -> None:
    ack = process_message(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert ack_code(ack) == "AR"
    assert InboundMessage.objects.count() == 0


def test_unsupported_message_type_gets_ar() -> None:
    raw = sample("ipf_pcd01_bp_request.hl7").replace(b"ORU^R01^ORU_R01", b"ADT^A01^ADT_A01")
    fields = ack_fields(process_message(raw))
    assert fields[1:3] == ["AR", "MSGID1234"]
