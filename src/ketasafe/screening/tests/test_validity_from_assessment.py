"""Validity counts from the assessment, not the signature; an assessment already past the validity
period cannot be signed (refused and audited)."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ketasafe.audit.models import AuditEntry
from ketasafe.clinic.models import ClinicSettings
from ketasafe.patients.models import Patient
from ketasafe.screening import services
from ketasafe.screening.eligibility import ELIGIBLE, EXPIRED, add_months, eligibility
from ketasafe.screening.models import Screening, Status
from ketasafe.screening.refusals import ScreeningTooOld

from .helpers import PROTOCOL, completed


def _assessed_days_ago(screening, days):
    """Move a completed screening's assessment `days` into the past (history unchanged since)."""
    then = timezone.now() - dt.timedelta(days=days)
    Screening.objects.filter(pk=screening.pk).update(completed_at=then, started_at=then - dt.timedelta(hours=1),
                                                    assessed_on=timezone.localtime(then).date())
    Patient.objects.filter(pk=screening.patient_id).update(clinical_changed_at=then - dt.timedelta(days=1))
    screening.refresh_from_db()
    return then


def test_an_assessment_older_than_the_validity_period_cannot_be_signed(make_patient, make_staff):
    prescriber = make_staff("prescriber")
    s = completed(make_patient(), make_staff("nurse"))
    _assessed_days_ago(s, 400)
    with pytest.raises(ScreeningTooOld, match="validity period"):
        services.do_sign_screening(actor=prescriber, screening=s)
    s.refresh_from_db()
    assert s.status == Status.COMPLETED and s.signed_at is None
    assert AuditEntry.objects.filter(action="refused", actor_user=prescriber,
                                     detail__contains="ScreeningTooOld").exists()


def test_not_treated_can_still_be_recorded_for_an_old_assessment(make_patient, make_staff):
    s = completed(make_patient(), make_staff("nurse"))
    _assessed_days_ago(s, 400)
    s = services.do_record_not_treated(actor=make_staff("prescriber"), screening=s, reason="Lost to follow-up.")
    assert s.status == Status.NOT_TREATED


def test_validity_runs_from_the_assessment_even_when_signed_later(make_patient, make_staff):
    settings = ClinicSettings.current()
    settings.screening_validity_months = 12
    settings.save()
    patient = make_patient()
    s = completed(patient, make_staff("nurse"))
    assessed = _assessed_days_ago(s, 200)
    s = services.do_sign_screening(actor=make_staff("prescriber"), screening=s)
    boundary = add_months(assessed, 12)
    result = eligibility(patient, PROTOCOL, boundary - dt.timedelta(seconds=1))
    assert result.state == ELIGIBLE and result.expires_at == boundary
    assert boundary < add_months(s.signed_at, 12)
    assert eligibility(patient, PROTOCOL, boundary).state == EXPIRED


def test_an_assessed_on_day_before_the_run_starts_the_clock_that_day(make_patient, make_staff):
    from ketasafe.lib.timeutil import clinic_today, clinic_tz

    patient = make_patient()
    nurse = make_staff("nurse")
    s = services.do_start_intake(actor=nurse, patient=patient, protocol=PROTOCOL, indication="TRD")
    day = clinic_today() - dt.timedelta(days=3)
    patient.measurements.create(measured_on=day, weight_kg=80, recorded_by=nurse)
    s = services.do_complete_screening(actor=nurse, screening=s, assessed_on=day)
    s = services.do_sign_screening(actor=make_staff("prescriber"), screening=s)
    start = dt.datetime.combine(day, dt.time.min, tzinfo=clinic_tz())
    assert eligibility(patient, PROTOCOL, timezone.now()).expires_at == add_months(start, 12)
