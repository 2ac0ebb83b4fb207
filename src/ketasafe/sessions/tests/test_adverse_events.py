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


@pytest.mark.parametrize("kwargs,match", [
    ({"type": "bogus_type"}, "Unknown adverse event type"),
    ({"occurred_at_days": -400}, "more than an hour before check-in"),
    ({"occurred_at_days": 1}, "cannot be in the future"),
])
def test_adverse_event_type_and_time_are_validated_even_after_discharge(esk_session, team, now,
                                                                         kwargs, match):
    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=2))
    services.do_discharge(actor=team["nurse"], session=esk_session, aldrete_answers=GOOD_ALDRETE,
                          responsible_adult_present=True, driving_instructions_given=True, at=now)
    occurred = now + dt.timedelta(days=kwargs.get("occurred_at_days", 0)) - dt.timedelta(minutes=5)
    with pytest.raises(StepRefused, match=match):
        services.do_record_adverse_event(actor=team["nurse"], session=esk_session,
                                         type=kwargs.get("type", "nausea_vomiting"), grade=4,
                                         occurred_at=occurred, action_taken="x", outcome="y", at=now)
    assert not AdverseEvent.objects.exists()


@pytest.mark.parametrize("value", ["0001-01-01T00:00", "1900-01-01T00:00"])
def test_posting_an_adverse_event_long_before_check_in_is_refused(esk_session, team, now, login,
                                                                  value):
    walk(esk_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    response = login(team["nurse"]).post(f"/sessions/{esk_session.pk}/step/adverse_event/", {
        "type": "nausea_vomiting", "grade": "1", "occurred_at": value, "action_taken": "x",
        "outcome": "y"})
    assert response.status_code == 409 and "before check-in" in response.content.decode()
    assert not AdverseEvent.objects.exists()


def test_grade_3_events_without_a_note_are_listed_on_the_forms_due_page(esk_session, team, now,
                                                                       login):
    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=2))
    services.do_discharge(actor=team["nurse"], session=esk_session, aldrete_answers=GOOD_ALDRETE,
                          responsible_adult_present=True, driving_instructions_given=True, at=now)
    # reported by phone after discharge, by a nurse: nothing is blocked by it any more
    event = _event(esk_session, team["nurse"], now, 3)
    _event(esk_session, team["nurse"], now, 2)
    page = login(team["nurse"]).get("/sessions/forms-due/").content.decode()
    listed = page[page.index('id="events-need-note"'):]
    assert esk_session.patient.full_name in listed and "hypertension" in listed.lower()
    assert listed.count("<tr><td>") == 1
    services.do_add_prescriber_note(actor=team["prescriber"], session=esk_session, event=event,
                                    note="seen in clinic next day; resolved")
    page = login(team["nurse"]).get("/sessions/forms-due/").content.decode()
    assert esk_session.patient.full_name not in page[page.index('id="events-need-note"'):]
