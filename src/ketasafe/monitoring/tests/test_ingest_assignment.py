"""Whose data: the session on the chair (bed or mapped device), else the patient by MRN, else
unassigned; plus the all-or-nothing and never-raise guarantees of process_message."""

from __future__ import annotations

from decimal import Decimal

import pytest

from ketasafe.monitoring import codemap, ingest
from ketasafe.monitoring.ingest import process_batch, process_message
from ketasafe.monitoring.models import CodeMapEntry, Device, InboundMessage, Observation

from .helpers import ack_code, ack_fields, make_chair, make_session, oru

pytestmark = pytest.mark.django_db


def test_observations_go_to_the_session_in_progress_on_the_chair_named_by_pv1_3(make_patient) -> None:
    chair = make_chair(bed_code="KETA^^CHAIR1")
    session = make_session(make_patient(), chair=chair)
    make_session(make_patient(), chair=make_chair("Chair 2", "KETA^^CHAIR2"))
    assert ack_code(process_message(oru("A1", bed="KETA^^CHAIR1"))) == "AA"
    rows = Observation.objects.exclude(kind="")
    assert rows.count() == 5
    assert {o.session_id for o in rows} == {session.pk}
    assert {o.patient_id for o in rows} == {session.patient_id}


def test_a_finished_session_on_the_chair_does_not_receive_data(make_patient) -> None:
    chair = make_chair()
    make_session(make_patient(), chair=chair, status="discharged")
    process_message(oru("A1"))
    assert not Observation.objects.exclude(session=None).exists()


def test_a_device_mapped_to_a_chair_ties_data_without_a_bed(make_patient) -> None:
    chair = make_chair()
    session = make_session(make_patient(), chair=chair)
    Device.objects.create(identifier="0012A3FFFE0000AA", chair=chair)
    process_message(oru("A2", bed="", device="0012A3FFFE0000AA"))
    assert set(Observation.objects.values_list("session_id", flat=True)) == {session.pk}
    assert Device.objects.get().last_seen_at is not None


def test_without_chair_the_patient_is_found_by_pid3_mrn(make_patient) -> None:
    patient = make_patient(mrn="MRN-77")
    process_message(oru("A3", bed="UNKNOWN^^BED", mrn="MRN-77"))
    assert set(Observation.objects.values_list("patient_id", "session_id")) == {(patient.pk, None)}


def test_pid3_naming_another_patient_than_the_chairs_session_keeps_data_off_that_session(make_patient) -> None:
    chair = make_chair()
    make_session(make_patient(mrn="IN-CHAIR"), chair=chair)
    other = make_patient(mrn="OTHER")
    process_message(oru("A4", mrn="OTHER"))
    rows = list(Observation.objects.all())
    assert {o.session_id for o in rows} == {None}
    assert {o.patient_id for o in rows} == {other.pk}
    assert all("patient_mismatch" in o.flags for o in rows)


def test_unmapped_codes_are_flagged_and_listed_for_the_admin(client_for) -> None:
    raw = oru("A5").replace(b"151562^MDC_RESP_RATE^MDC", b"0002-9999^XYZ^MDIL")
    process_message(raw)
    odd = Observation.objects.get(raw_code="0002-9999")
    assert odd.unmapped and "unmapped" in odd.flags and odd.kind == "" and odd.value is None
    page = client_for("clinic_admin").get("/monitoring/code-map/unmapped/")
    assert page.status_code == 200
    assert b"0002-9999" in page.content


def test_fahrenheit_is_converted_to_celsius() -> None:
    raw = oru("A6").replace(
        b"OBX|7|NM|151562^MDC_RESP_RATE^MDC|1.0.4.1|14|264928^MDC_DIM_RESP_PER_MIN^MDC",
        b"OBX|7|NM|150364^MDC_TEMP_BODY^MDC|1.0.4.1|98.6|266560^MDC_DIM_FAHR^MDC")
    process_message(raw)
    temp = Observation.objects.get(kind="temperature")
    assert (temp.value, temp.unit, temp.raw_value, temp.loinc) == (Decimal("37.00"), "Cel", "98.6", "8310-5")


def test_a_code_map_edit_applies_to_the_next_message(make_staff) -> None:
    process_message(oru("B1").replace(b"151562^MDC_RESP_RATE^MDC", b"RR^Resp^LOCAL"))
    assert Observation.objects.get(raw_code="RR").unmapped
    codemap.do_save_code_map_entry(actor=make_staff("clinic_admin"), values={
        "source": "KSIM", "system": "LOCAL", "code": "RR", "loinc": "9279-1", "display": "Respiratory rate",
        "ucum_unit": "/min", "kind": "resp_rate", "plausible_low": Decimal(0), "plausible_high": Decimal(350),
        "active": True})
    process_message(oru("B2").replace(b"151562^MDC_RESP_RATE^MDC", b"RR^Resp^LOCAL"))
    latest = Observation.objects.filter(raw_code="RR").latest("id")
    assert (latest.kind, latest.value, latest.unmapped) == ("resp_rate", Decimal(14), False)
    # Only for that sender: another vendor's "RR" stays unmapped.
    process_message(oru("B3", sender="OTHER").replace(b"151562^MDC_RESP_RATE^MDC", b"RR^Resp^LOCAL"))
    assert Observation.objects.filter(raw_code="RR").latest("id").unmapped


def test_code_map_is_seeded_from_the_shipped_map_when_empty() -> None:
    CodeMapEntry.objects.all().delete()
    codemap.invalidate()
    process_message(oru("S1"))
    assert CodeMapEntry.objects.filter(system="MDC", code="150021", loinc="8480-6").exists()
    assert Observation.objects.get(kind="systolic").value == 124


def test_an_unexpected_error_while_storing_is_ae_and_nothing_is_stored(monkeypatch) -> None:
    def boom(*args, **kwargs):  # called after the InboundMessage row is written: it must roll back
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(ingest, "map_observation", boom)
    ack = process_message(oru("E1"))
    fields = ack_fields(ack)
    assert fields[1:3] == ["AE", "E1"]
    assert "internal error" in fields[3]
    assert "disk on fire" not in ack.decode()
    assert InboundMessage.objects.count() == 0 and Observation.objects.count() == 0


def test_a_parser_crash_is_ae_not_an_exception(monkeypatch) -> None:
    monkeypatch.setattr(ingest, "parse_oru_fast", lambda *a, **k: 1 / 0)
    assert ack_code(process_message(oru("E2"))) == "AE"


def test_one_bad_message_in_a_batch_does_not_cost_the_others(monkeypatch) -> None:
    real = ingest.map_observation

    def picky(obs, code_map):
        if obs.raw_value == "666":
            raise RuntimeError("bad")
        return real(obs, code_map)

    monkeypatch.setattr(ingest, "map_observation", picky)
    acks = process_batch([oru("G1"), oru("G2", systolic=666), b"garbage", oru("G1"), oru("G3")])
    assert [ack_code(a) for a in acks] == ["AA", "AE", "AR", "AA", "AA"]
    assert sorted(InboundMessage.objects.values_list("control_id", flat=True)) == ["G1", "G3"]
    assert Observation.objects.filter(message__control_id="G1").count() == 7


def test_a_device_is_not_marked_seen_by_a_message_answered_ae(make_patient, monkeypatch) -> None:
    chair = make_chair()
    make_session(make_patient(), chair=chair)
    Device.objects.create(identifier="0012A3FFFE0000AB", chair=chair)

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(ingest, "_insert", broken)
    assert ack_code(process_message(oru("D1", bed="", device="0012A3FFFE0000AB"))) == "AE"
    assert Device.objects.get().last_seen_at is None


def test_a_patient_with_two_sessions_in_progress_gets_data_flagged_off_both(make_patient) -> None:
    patient = make_patient(mrn="TWO")
    first = make_session(patient)
    make_session(patient, prescriber=first.prescriber_on_site)
    process_message(oru("T1", bed="UNKNOWN^^BED", mrn="TWO"))
    rows = list(Observation.objects.all())
    assert {o.session_id for o in rows} == {None}
    assert all("several_sessions_in_progress" in o.flags for o in rows)
