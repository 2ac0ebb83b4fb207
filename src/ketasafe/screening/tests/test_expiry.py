"""A signed screening expires after the clinic's validity months, exactly at the boundary."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.clinic.models import ClinicSettings
from ketasafe.screening.eligibility import ELIGIBLE, EXPIRED, add_months, eligibility

from .helpers import PROTOCOL, signed


def test_add_months_clamps_to_the_end_of_a_shorter_month():
    t = dt.datetime(2026, 1, 31, 10, 0, tzinfo=dt.UTC)
    assert add_months(t, 1) == dt.datetime(2026, 2, 28, 10, 0, tzinfo=dt.UTC)
    assert add_months(t, 12) == dt.datetime(2027, 1, 31, 10, 0, tzinfo=dt.UTC)
    assert add_months(dt.datetime(2024, 2, 29, tzinfo=dt.UTC), 12) == dt.datetime(2025, 2, 28, tzinfo=dt.UTC)


@pytest.mark.parametrize("months", [12, 6])
def test_screening_expires_exactly_validity_months_after_the_assessment(make_patient, make_staff, months):
    settings = ClinicSettings.current()
    settings.screening_validity_months = months
    settings.save()
    patient = make_patient()
    s = signed(patient, make_staff("nurse"), make_staff("prescriber"))
    boundary = add_months(s.completed_at, months)
    just_before = eligibility(patient, PROTOCOL, boundary - dt.timedelta(microseconds=1))
    assert just_before.state == ELIGIBLE and just_before.expires_at == boundary
    at_boundary = eligibility(patient, PROTOCOL, boundary)
    assert at_boundary.state == EXPIRED
    assert [p.code for p in at_boundary.problems] == ["screening_expired"]


def test_a_screening_signed_after_the_moment_asked_about_does_not_count(make_patient, make_staff):
    patient = make_patient()
    s = signed(patient, make_staff("nurse"), make_staff("prescriber"))
    assert eligibility(patient, PROTOCOL, s.signed_at - dt.timedelta(seconds=1)).state == "needs_screening"
