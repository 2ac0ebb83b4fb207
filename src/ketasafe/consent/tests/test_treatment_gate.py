"""treatment_allowed lists every missing piece; REMS enrollment only for esketamine."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ketasafe.consent.gate import GateProblem, TreatmentGate, treatment_allowed
from ketasafe.consent.models import Kind
from ketasafe.patients.models import Problem
from ketasafe.screening import services
from ketasafe.screening.tests.helpers import completed, consented, published, signed


@pytest.fixture
def staff(make_staff):
    return {r: make_staff(r) for r in ("nurse", "prescriber", "clinic_admin")}


def codes(gate):
    return [p.code for p in gate.missing]


def test_nothing_done_lists_screening_consent_and_rems(make_patient):
    gate = treatment_allowed(make_patient(), "esketamine-trd", timezone.now())
    assert isinstance(gate, TreatmentGate) and not gate.allowed
    assert codes(gate) == ["screening_missing", "consent_missing", "rems_enrollment_missing"]
    assert all(isinstance(p, GateProblem) and p.message for p in gate.missing)


def test_iv_ketamine_never_needs_rems(make_patient):
    assert codes(treatment_allowed(make_patient(), "iv-ketamine-depression", timezone.now())) == [
        "screening_missing", "consent_missing"]


def test_everything_in_place_is_allowed(make_patient, staff):
    patient = make_patient()
    signed(patient, staff["nurse"], staff["prescriber"], protocol="esketamine-trd")
    consented(patient, published(staff["clinic_admin"], "esketamine-trd"), staff["nurse"])
    rems = published(staff["clinic_admin"], "esketamine-trd", Kind.REMS_ENROLLMENT, title="REMS")
    gate = treatment_allowed(patient, "esketamine-trd", timezone.now())
    assert codes(gate) == ["rems_enrollment_missing"]
    consented(patient, rems, staff["nurse"], prescriber=staff["prescriber"])
    gate = treatment_allowed(patient, "esketamine-trd", timezone.now())
    assert gate == TreatmentGate(allowed=True, missing=())


def test_rems_enrollment_for_one_esketamine_protocol_counts_for_the_other(make_patient, staff):
    patient = make_patient()
    rems = published(staff["clinic_admin"], "esketamine-trd", Kind.REMS_ENROLLMENT, title="REMS")
    consented(patient, rems, staff["nurse"], prescriber=staff["prescriber"])
    assert "rems_enrollment_missing" not in codes(treatment_allowed(patient, "esketamine-mdsi", timezone.now()))


def test_unsigned_and_ineligible_screenings_are_named(make_patient, staff):
    patient = make_patient()
    Problem.objects.create(patient=patient, icd10_code="I67.1", description="aneurysm", status="active")
    s = completed(patient, staff["nurse"])
    assert codes(treatment_allowed(patient, s.protocol, timezone.now()))[:2] == [
        "screening_ineligible", "screening_unsigned"]
    services.do_record_not_treated(actor=staff["prescriber"], screening=s, reason="Aneurysm, not treating.")
    assert codes(treatment_allowed(patient, s.protocol, timezone.now()))[0] == "screening_ineligible"


def test_expired_and_stale_are_both_listed(make_patient, staff):
    from ketasafe.patients import services as patient_services

    patient = make_patient()
    s = signed(patient, staff["nurse"], staff["prescriber"])
    version = published(staff["clinic_admin"])
    consented(patient, version, staff["nurse"])
    patient_services.do_update_patient(actor=staff["nurse"], patient=patient, pregnancy_status="not_applicable")
    gate = treatment_allowed(patient, s.protocol, s.signed_at + dt.timedelta(days=400))
    assert codes(gate) == ["screening_stale", "screening_expired"]
