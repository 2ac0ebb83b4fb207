"""A signed screening becomes stale at once when the history it used changes."""

from __future__ import annotations

import pytest
from django.utils import timezone

from ketasafe.patients import services as patient_services
from ketasafe.patients.models import Medication, Problem
from ketasafe.screening.eligibility import ELIGIBLE, STALE, eligibility

from .helpers import PROTOCOL, signed


@pytest.fixture
def setup(make_patient, make_staff):
    nurse, prescriber = make_staff("nurse"), make_staff("prescriber")
    patient = make_patient(sex="female", pregnancy_status="not_pregnant", breastfeeding=False)
    signed(patient, nurse, prescriber)
    assert eligibility(patient, PROTOCOL, timezone.now()).state == ELIGIBLE
    return patient, nurse, prescriber


def _state(patient):
    return eligibility(patient, PROTOCOL, timezone.now())


def test_problem_added_after_signing_makes_the_screening_stale(setup):
    patient, nurse, prescriber = setup
    patient_services.do_add_record(actor=nurse, patient=patient, model=Problem, icd10_code="I48.91",
                                   description="Atrial fibrillation", status="active")
    result = _state(patient)
    assert result.state == STALE
    assert [p.code for p in result.problems] == ["screening_stale"]


def test_medication_added_or_stopped_after_signing_makes_it_stale(setup):
    patient, nurse, prescriber = setup
    med = patient_services.do_add_record(actor=nurse, patient=patient, model=Medication,
                                         atc_code="N05BA06", name="lorazepam")
    assert _state(patient).state == STALE
    signed(patient, nurse, prescriber)
    assert _state(patient).state == ELIGIBLE
    patient_services.do_update_record(actor=nurse, obj=med, active=False)
    assert _state(patient).state == STALE


def test_pregnancy_status_change_after_signing_makes_it_stale(setup):
    patient, nurse, prescriber = setup
    patient_services.do_update_patient(actor=nurse, patient=patient, pregnancy_status="pregnant")
    assert _state(patient).state == STALE


def test_a_change_that_is_not_a_screening_input_keeps_it_current(setup):
    patient, nurse, prescriber = setup
    patient_services.do_update_patient(actor=nurse, patient=patient, phone="555-0000")
    assert _state(patient).state == ELIGIBLE
