"""Adverse events with CTCAE grades; grade >= 3 needs a prescriber note before discharge."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.sessions import services
from ketasafe.sessions.exceptions import GateRefused, StepRefused
from ketasafe.sessions.models import AdverseEvent
from ketasafe.sessions.state import Status

from .helpers import GOOD_ALDRETE, final_check, walk

pytestmark = pytest.mark.django_db


def _event(session, actor, now, grade, note=""):
    return services.do_record_adverse_event(
        actor=actor, session=session, type="hypertension", grade=grade,
        occurred_at=now - dt.timedelta(minutes=60), action_taken="rechecked BP every 10 min",
        outcome="resolved", prescriber_note=note, at=now)


def test_grade_3_by_a_prescriber_needs_the_note(esk_session, team, now):
    walk(esk_session, Status.MONITORING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=70))
    with pytest.raises(StepRefused, match="prescriber's note"):
        _event(esk_session, team["prescriber"], now, 3)
    event = _event(esk_session, team["prescriber"], now, 3, note="labetalol not needed; observed")
    assert event.prescriber == team["prescriber"] and not event.needs_prescriber_note


def test_grade_3_by_a_nurse_blocks_discharge_until_a_prescriber_notes_it(esk_session, team, now):
    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=1))
    event = _event(esk_session, team["nurse"], now, 3)
    assert event.needs_prescriber_note
    with pytest.raises(StepRefused, match="Only a prescriber"):
        services.do_add_prescriber_note(actor=team["nurse"], session=esk_session, event=event, note="x")
    with pytest.raises(GateRefused, match="ADVERSE-EVENT-NOTES"):
        services.do_discharge(actor=team["nurse"], session=esk_session, aldrete_answers=GOOD_ALDRETE,
                              responsible_adult_present=True, driving_instructions_given=True, at=now)
    services.do_add_prescriber_note(actor=team["prescriber"], session=esk_session, event=event,
                                    note="reviewed; BP settled without treatment")
    services.do_discharge(actor=team["nurse"], session=esk_session, aldrete_answers=GOOD_ALDRETE,
                          responsible_adult_present=True, driving_instructions_given=True, at=now)


def test_grade_outside_1_to_5_is_refused(esk_session, team, now):
    walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    with pytest.raises(StepRefused, match="1 to 5"):
        _event(esk_session, team["nurse"], now, 6)
    assert not AdverseEvent.objects.exists()


def test_bad_adverse_event_post_is_400_not_500(esk_session, team, now, login):
    walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    response = login(team["nurse"]).post(f"/sessions/{esk_session.pk}/step/adverse_event/", {
        "type": "made-up", "grade": "9", "action_taken": "", "outcome": ""})
    assert response.status_code == 400
    assert not AdverseEvent.objects.exists()


def test_nurse_cannot_post_a_prescriber_note(esk_session, team, now, login):
    walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    event = _event(esk_session, team["nurse"], now, 4)
    response = login(team["nurse2"]).post(f"/sessions/{esk_session.pk}/step/ae_note/",
                                          {"event": event.pk, "note": "fine"})
    assert response.status_code == 403
    event.refresh_from_db()
    assert event.needs_prescriber_note
