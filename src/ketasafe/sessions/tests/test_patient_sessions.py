"""A patient is in one session at a time and is never dosed within the minimum interval, across
ALL their sessions and courses (the course rules alone see only one course)."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.conftest import TEST_PASSWORD
from ketasafe.protocols import services as protocol_services
from ketasafe.sessions import checks, services
from ketasafe.sessions.exceptions import GateRefused, StepRefused
from ketasafe.sessions.models import Administration, TreatmentSession
from ketasafe.sessions.state import Status

from . import helpers
from .helpers import walk

pytestmark = pytest.mark.django_db


def _switch_course(old_order, team, patient, now):
    """Cancel the open course and order an IV course (one open course at a time)."""
    protocol_services.do_cancel_order(actor=team["prescriber"], order=old_order,
                                      reason="switching to IV", password=TEST_PASSWORD)
    return helpers.sign_order(patient, team["prescriber"], "iv-ketamine-depression",
                              at=now - dt.timedelta(minutes=30))


def test_drug_given_in_another_course_blocks_dosing_within_the_minimum_interval(
        esk_order, team, patient, now):
    first = helpers.schedule(esk_order, team["nurse"], now - dt.timedelta(hours=2), chair_n=1,
                             prescriber=team["prescriber"])
    walk(first, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(hours=1))
    services.do_end(actor=team["nurse"], session=first, kind="ama", reason="left early",
                    at=now - dt.timedelta(minutes=50))
    iv = _switch_course(esk_order, team, patient, now)
    second = helpers.schedule(iv, team["nurse"], now, chair_n=2, prescriber=team["prescriber"])
    with pytest.raises(GateRefused) as exc:
        walk(second, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    found = {r.code: r for r in exc.value.results if r.blocking}
    assert set(found) == {"PATIENT-SESSIONS"} and found["PATIENT-SESSIONS"].hard
    assert "0.9 h ago" in found["PATIENT-SESSIONS"].message  # pre-checks run 5 min before the dose
    assert "at least 24 h" in found["PATIENT-SESSIONS"].message
    assert not Administration.objects.filter(session=second).exists()
    # a day later the same session passes
    assert not any(r.blocking for r in checks.precheck_results(second, now + dt.timedelta(hours=24))
                   if r.code == "PATIENT-SESSIONS")


def test_another_session_with_drug_on_board_blocks_dosing(esk_order, team, patient, now):
    first = helpers.schedule(esk_order, team["nurse"], now - dt.timedelta(days=3), chair_n=1,
                             prescriber=team["prescriber"])
    second = helpers.schedule(esk_order, team["nurse"], now, chair_n=2,
                              prescriber=team["prescriber"])
    walk(second, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    # However it came about (old data, a race on SQLite), a session with drug on board blocks.
    TreatmentSession.objects.filter(pk=first.pk).update(status=Status.MONITORING.value)
    blocking = {r.code: r for r in checks.precheck_results(second, now) if r.blocking}
    assert "has drug on board" in blocking["PATIENT-SESSIONS"].message


def test_check_in_is_refused_while_the_patient_is_in_another_session(esk_order, team, now, login):
    a = helpers.schedule(esk_order, team["nurse"], now, chair_n=1, prescriber=team["prescriber"])
    b = helpers.schedule(esk_order, team["nurse"], now, chair_n=2, prescriber=team["prescriber"])
    services.do_check_in(actor=team["nurse"], session=a, at=now)
    with pytest.raises(StepRefused, match="already has a session in progress in Chair 1"):
        services.do_check_in(actor=team["nurse"], session=b, at=now)
    b.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{b.pk}/step/check_in/", {
        "row_version": b.row_version, "chair": helpers.chair(2).pk})
    assert response.status_code == 409 and "session in progress" in response.content.decode()
    assert TreatmentSession.objects.get(pk=b.pk).status == Status.SCHEDULED
    # once the first session has ended, the patient can be checked in again
    services.do_end(actor=team["nurse"], session=a, kind="cancel", reason="wrong slot", at=now)
    services.do_check_in(actor=team["nurse"], session=b, at=now)
