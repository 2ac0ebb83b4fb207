"""A newer screening awaiting sign-off that found a contraindication or warnings blocks treatment,
even while an older signed screening and a current consent are in place."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from django.utils import timezone

from ketasafe.consent.gate import SCREENING_PENDING_REVIEW, treatment_allowed
from ketasafe.patients.models import Problem
from ketasafe.screening import services
from ketasafe.screening.eligibility import INELIGIBLE_UNSIGNED, PENDING_REVIEW, eligibility
from ketasafe.screening.tests.helpers import PROTOCOL, completed, consented, published, signed


@pytest.fixture
def treatable(make_patient, make_staff):
    """A patient with a signed eligible screening and a signed consent: allowed to be treated."""
    staff = {r: make_staff(r) for r in ("nurse", "prescriber", "clinic_admin")}
    patient = make_patient()
    signed(patient, staff["nurse"], staff["prescriber"])
    consented(patient, published(staff["clinic_admin"]), staff["nurse"])
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed
    return patient, staff


def codes(patient, at=None):
    return [p.code for p in treatment_allowed(patient, PROTOCOL, at or timezone.now()).missing]


def test_a_newer_ineligible_screening_awaiting_sign_off_blocks_treatment(treatable):
    patient, staff = treatable
    completed(patient, staff["nurse"], systolic=200, diastolic=120)  # BP-CRISIS today
    gate = treatment_allowed(patient, PROTOCOL, timezone.now())
    assert not gate.allowed and [p.code for p in gate.missing] == ["screening_ineligible"]
    assert "BP-CRISIS" in gate.missing[0].message
    assert eligibility(patient, PROTOCOL, timezone.now()).state == INELIGIBLE_UNSIGNED


def test_a_newer_needs_review_screening_awaiting_sign_off_blocks_treatment(treatable):
    patient, staff = treatable
    Problem.objects.create(patient=patient, icd10_code="H40.1", description="glaucoma", status="active")
    s = completed(patient, staff["nurse"])
    assert s.outcome == "needs_review"
    gate = treatment_allowed(patient, PROTOCOL, timezone.now())
    assert not gate.allowed and [p.code for p in gate.missing] == [SCREENING_PENDING_REVIEW]
    assert "GLAUCOMA" in next(p.message for p in gate.missing if p.code == SCREENING_PENDING_REVIEW)
    assert eligibility(patient, PROTOCOL, timezone.now()).state == PENDING_REVIEW
    services.do_sign_screening(actor=staff["prescriber"], screening=s,
                               justifications={"GLAUCOMA": "Ophthalmology cleared, IOP 15."})
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed


def test_a_newer_eligible_screening_awaiting_sign_off_does_not_block(treatable):
    patient, staff = treatable
    completed(patient, staff["nurse"], systolic=120, diastolic=80)
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed


def test_a_draft_intake_does_not_block(treatable):
    patient, staff = treatable
    services.do_start_intake(actor=staff["nurse"], patient=patient, protocol=PROTOCOL, indication="re-screen")
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed


def test_a_newer_ineligible_screening_does_not_count_before_it_ran(treatable):
    patient, staff = treatable
    before = timezone.now()
    completed(patient, staff["nurse"], systolic=200, diastolic=120)
    assert codes(patient, before) == []
    assert codes(patient, timezone.now() + dt.timedelta(seconds=1)) == ["screening_ineligible"]


def _banner(client, patient):
    page = client.get(f"/patients/{patient.pk}/").content.decode()
    match = re.search(rf'data-protocol="{PROTOCOL}" data-state="([^"]+)">\s*<strong>([^<]+)</strong>', page)
    return match.group(1), match.group(2), page


def test_the_banner_says_not_eligible_awaiting_prescriber_for_a_newer_ineligible_screening(treatable, client_for):
    patient, staff = treatable
    completed(patient, staff["nurse"], systolic=200, diastolic=120)
    state, label, page = _banner(client_for("nurse"), patient)
    assert state == "ineligible_unsigned" and label.endswith("Not eligible (awaiting prescriber)")
    assert "BP-CRISIS" in page


def test_the_banner_says_needs_prescriber_review_for_a_newer_needs_review_screening(treatable, client_for):
    patient, staff = treatable
    Problem.objects.create(patient=patient, icd10_code="H40.1", description="glaucoma", status="active")
    completed(patient, staff["nurse"])
    state, label, _ = _banner(client_for("nurse"), patient)
    assert state == "pending_review" and label.endswith("Needs prescriber review")


def test_the_banner_of_a_first_ineligible_screening_awaiting_sign_off_says_not_eligible(
        make_patient, make_staff, client_for):
    patient = make_patient()
    Problem.objects.create(patient=patient, icd10_code="I67.1", description="aneurysm", status="active")
    completed(patient, make_staff("nurse"))
    state, label, _ = _banner(client_for("nurse"), patient)
    assert state == "ineligible_unsigned" and "Needs screening" not in label
    assert label.endswith("Not eligible (awaiting prescriber)")
