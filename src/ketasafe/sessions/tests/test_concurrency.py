"""Two nurses acting at once cannot push two transitions: row lock + row_version."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.sessions import services
from ketasafe.sessions.exceptions import StaleSession
from ketasafe.sessions.models import SessionTransition, TreatmentSession
from ketasafe.sessions.state import Status

from .helpers import walk

pytestmark = pytest.mark.django_db


def test_second_transition_with_the_same_row_version_is_refused(esk_session, team):
    seen = esk_session.row_version
    services._transition(TreatmentSession.objects.get(pk=esk_session.pk), Status.CHECKED_IN,
                        actor=team["nurse"], expected_row_version=seen)
    other_nurse_copy = TreatmentSession.objects.get(pk=esk_session.pk)
    with pytest.raises(StaleSession) as exc:
        services._transition(other_nurse_copy, Status.CANCELLED, actor=team["nurse2"],
                            expected_row_version=seen, reason="double click")
    assert "this session changed" in str(exc.value).lower()
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.CHECKED_IN
    assert SessionTransition.objects.filter(session=esk_session).count() == 1


def test_the_same_step_twice_is_refused_not_repeated(esk_session, team, now):
    walk(esk_session, Status.PRE_CHECKS_PASSED, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now)
    seen = TreatmentSession.objects.get(pk=esk_session.pk).row_version
    services.do_start_dosing(actor=team["nurse"], session=esk_session, lot_number="L1",
                             observing_prescriber=team["prescriber"], expected_row_version=seen,
                             at=now)
    with pytest.raises(StaleSession):
        services.do_start_dosing(actor=team["nurse2"], session=esk_session, lot_number="L1",
                                 observing_prescriber=team["prescriber"],
                                 expected_row_version=seen, at=now)


def test_stale_form_gets_a_clear_message_and_409(esk_session, team, login):
    stale = esk_session.row_version
    services.do_check_in(actor=team["nurse2"], session=esk_session)
    response = login(team["nurse"]).post(
        f"/sessions/{esk_session.pk}/step/end/",
        {"row_version": stale, "kind": "cancel", "reason": "patient unwell"})
    assert response.status_code == 409
    assert "This session changed" in response.content.decode()
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.CHECKED_IN


def test_recording_a_check_bumps_the_version_so_an_open_discharge_form_is_stale(esk_session, team, now):
    walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now + dt.timedelta(minutes=30))
    seen = TreatmentSession.objects.get(pk=esk_session.pk).row_version
    services.do_record_check(actor=team["nurse2"], session=esk_session, code="pre-dose", moaas=5,
                             at=now)
    with pytest.raises(StaleSession):
        services.do_pass_prechecks(actor=team["nurse"], session=esk_session,
                                   expected_row_version=seen, at=now)
