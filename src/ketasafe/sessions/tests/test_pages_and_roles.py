"""The pages: the day list, scheduling, the session page; wrong roles get 403, bad input 4xx."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.lib.timeutil import clinic_tz
from ketasafe.sessions.models import TreatmentSession
from ketasafe.sessions.state import Status

from . import helpers

pytestmark = pytest.mark.django_db


def test_today_lists_the_days_sessions_with_check_in(esk_order, team, now, login):
    session = helpers.schedule(esk_order, team["nurse"], now)
    page = login(team["nurse"]).get("/sessions/")
    assert page.status_code == 200
    text = page.content.decode()
    assert session.patient.full_name in text and f"checkin-{session.pk}" in text


def test_check_in_from_the_day_list(esk_order, team, now, login):
    session = helpers.schedule(esk_order, team["nurse"], now)
    response = login(team["nurse"]).post(f"/sessions/{session.pk}/step/check_in/", {
        "row_version": session.row_version, "chair": helpers.chair(3).pk})
    assert response.status_code == 302
    session.refresh_from_db()
    assert session.status == Status.CHECKED_IN and session.chair.name == "Chair 3"


def test_a_chair_in_use_cannot_take_a_second_patient(esk_order, team, now, login, make_patient, gate):
    first = helpers.schedule(esk_order, team["nurse"], now)
    helpers.walk(first, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    other = helpers.sign_order(make_patient(), team["prescriber"], "esketamine-trd",
                               at=now - dt.timedelta(days=1))
    second = helpers.schedule(other, team["nurse"], now)
    response = login(team["nurse"]).post(f"/sessions/{second.pk}/step/check_in/", {
        "row_version": second.row_version, "chair": helpers.chair(1).pk})
    assert response.status_code == 409 and "in use" in response.content.decode()
    assert TreatmentSession.objects.get(pk=second.pk).status == Status.SCHEDULED


def test_schedule_page(esk_order, team, now, login):
    client = login(team["nurse"])
    assert client.get("/sessions/schedule/").status_code == 200
    tomorrow = (now + dt.timedelta(days=1)).astimezone(clinic_tz()).strftime("%Y-%m-%dT09:30")
    response = client.post("/sessions/schedule/", {
        "order": esk_order.pk, "scheduled_at": tomorrow, "chair": helpers.chair(2).pk,
        "prescriber_on_site": team["prescriber"].pk})
    assert response.status_code == 302
    session = TreatmentSession.objects.get()
    assert session.session_number == 1 and session.prescriber_on_site == team["prescriber"]


def test_session_page_walks_the_steps(esk_session, team, login):
    client = login(team["nurse"])
    text = client.get(f"/sessions/{esk_session.pk}/").content.decode()
    assert "step-check_in" in text
    helpers.walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"],
                 dose_at=esk_session.scheduled_at)
    text = client.get(f"/sessions/{esk_session.pk}/").content.decode()
    assert "step-checklist" in text and "Step 4: pre-checks" in text and "VITALS-RECENT" in text


@pytest.mark.parametrize("role", ["front_desk", "auditor", "cs_custodian", "clinic_admin"])
def test_roles_without_run_sessions_get_403(esk_session, client_for, role):
    client = client_for(role)
    assert client.get(f"/sessions/{esk_session.pk}/").status_code == 403
    response = client.post(f"/sessions/{esk_session.pk}/step/check_in/",
                           {"row_version": esk_session.row_version, "chair": helpers.chair().pk})
    assert response.status_code == 403
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.SCHEDULED
    assert client.get("/sessions/").status_code == 403


def test_front_desk_may_schedule_but_not_run(esk_order, esk_session, client_for):
    client = client_for("front_desk")
    assert client.get("/sessions/schedule/").status_code == 200
    assert client.get(f"/sessions/{esk_session.pk}/").status_code == 403
    assert client_for("auditor").get("/sessions/schedule/").status_code == 403


def test_unknown_step_is_404_and_get_is_405(esk_session, team, login):
    client = login(team["nurse"])
    assert client.post(f"/sessions/{esk_session.pk}/step/teleport/", {}).status_code == 404
    assert client.get(f"/sessions/{esk_session.pk}/step/check_in/").status_code == 405
    assert client.get("/sessions/999999/").status_code == 404


@pytest.mark.parametrize("step,data", [
    ("check_in", {"row_version": "x", "chair": "nope"}),
    ("check", {"row_version": "0", "code": "", "systolic": "abc"}),
    ("discharge", {"row_version": "0", "activity": "7"}),
    ("end", {"row_version": "0", "kind": "vanish", "reason": ""}),
    ("override", {}),
])
def test_bad_input_is_a_400_never_a_500(esk_session, team, login, step, data):
    client = login(team["prescriber"])
    response = client.post(f"/sessions/{esk_session.pk}/step/{step}/", data)
    assert response.status_code == 400
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.SCHEDULED


@pytest.mark.parametrize("when", ["0001-01-01T00:00", "9999-12-31T23:59", "far-past", "far-future"])
def test_schedule_outside_yesterday_to_two_years_is_a_400(esk_order, team, now, login, when):
    today = now.astimezone(clinic_tz())
    value = {"far-past": (today - dt.timedelta(days=2)).strftime("%Y-%m-%dT09:00"),
             "far-future": (today + dt.timedelta(days=800)).strftime("%Y-%m-%dT09:00")}.get(when, when)
    client = login(team["nurse"])
    response = client.post("/sessions/schedule/", {"order": esk_order.pk, "scheduled_at": value})
    assert response.status_code == 400 and "Choose a time from" in response.content.decode()
    assert not TreatmentSession.objects.exists()
    assert client.get("/sessions/").status_code == 200


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "2026-02-30", "junk"])
def test_day_list_with_an_impossible_day_falls_back_to_today(team, login, day):
    response = login(team["nurse"]).get(f"/sessions/?day={day}")
    assert response.status_code == 200
    assert "showing today" in response.content.decode()
