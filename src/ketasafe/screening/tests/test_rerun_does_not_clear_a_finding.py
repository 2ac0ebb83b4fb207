"""A screening that found a contraindication after the signed one keeps blocking, even when a
re-run that leaves the finding out (blank vitals) supersedes it: only a prescriber's newer
decision clears it."""

from __future__ import annotations

from django.utils import timezone

from ketasafe.consent.gate import treatment_allowed
from ketasafe.screening.models import Screening, Status

from .helpers import PROTOCOL, completed, consented, published, signed


def test_a_rerun_with_blank_vitals_does_not_clear_a_blood_pressure_crisis(make_patient, make_staff, client_for):
    nurse, prescriber, admin = make_staff("nurse"), make_staff("prescriber"), make_staff("clinic_admin")
    patient = make_patient()
    signed(patient, nurse, prescriber)
    consented(patient, published(admin), nurse)
    crisis = completed(patient, nurse, systolic=200, diastolic=120, heart_rate=88)
    assert crisis.outcome == "ineligible"
    response = client_for("front_desk").post(f"/screening/{crisis.pk}/intake/", {
        "indication": "TRD", "hepatic_impairment": "none", "drug_screen": "not_done"})  # vitals left blank
    assert response.status_code == 302
    assert Screening.objects.get(pk=crisis.pk).status == Status.SUPERSEDED
    gate = treatment_allowed(patient, PROTOCOL, timezone.now())
    assert not gate.allowed and "screening_ineligible" in gate.codes
    # The prescriber's new decision is what clears it.
    rerun = Screening.objects.get(patient=patient, status=Status.COMPLETED)
    from ketasafe.screening import services

    services.do_sign_screening(actor=prescriber, screening=rerun)
    assert treatment_allowed(patient, PROTOCOL, timezone.now()).allowed
