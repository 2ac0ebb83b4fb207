"""The printable record, the REMS PMF fields and the 7-day forms-due list."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.sessions import records, services
from ketasafe.sessions.exceptions import StepRefused
from ketasafe.sessions.state import Status

from . import helpers
from .helpers import GOOD_ALDRETE, final_check, walk

pytestmark = pytest.mark.django_db


def _discharged(session, team, now):
    walk(session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=125))
    final_check(session, team["nurse"], now - dt.timedelta(minutes=1))
    services.do_discharge(actor=team["nurse"], session=session, aldrete_answers=GOOD_ALDRETE,
                          responsible_adult_present=True, driving_instructions_given=True,
                          ready_to_leave_min=90, at=now)
    session.refresh_from_db()
    return session


def test_pmf_fields_are_filled_from_the_session(esk_session, team, now):
    _discharged(esk_session, team, now)
    fields = dict(records.pmf_fields(esk_session))
    assert fields["Patient name"] == esk_session.patient.full_name
    assert fields["First treatment"] == "Yes"
    assert fields["Dose given"] == "56 mg" and fields["Lot number"] == "LOT-1"
    assert fields["Treatment duration (first device to end of monitoring, min)"] == "125"
    assert fields["Ready to leave without the 2-hour minimum (min from start)"] == "90"
    assert fields["BP before administration"] == "122/78"
    assert fields["BP 40 minutes after administration"] == "138/86"
    assert fields["BP before the session ended"] == "124/80"
    assert fields["Concomitant: benzodiazepines"] == "No"
    assert fields["Concomitant: opioids"] == "No"
    assert fields["Sedation"] == "Yes"  # MOAA/S 4 at the 40-minute check
    assert fields["Vital signs acceptable before administration"] == "Yes"
    assert fields["Vital signs acceptable before the session ended"] == "Yes"


def test_forms_due_lists_esketamine_sessions_until_submitted(esk_session, team, now, login,
                                                            make_patient):
    # An IV session (another patient: one open course per patient) needs no PMF.
    iv_order = helpers.sign_order(make_patient(), team["prescriber"], "iv-ketamine-depression",
                                  at=now - dt.timedelta(days=1))
    helpers.schedule(iv_order, team["nurse"], now - dt.timedelta(hours=3), chair_n=2,
                     prescriber=team["prescriber"])
    _discharged(esk_session, team, now)
    due = list(records.forms_due())
    assert due == [esk_session]
    assert records.pmf_deadline(esk_session) == (
        esk_session.dosing_started_at.astimezone(__import__("ketasafe.lib.timeutil", fromlist=["x"]).clinic_tz()).date()
        + dt.timedelta(days=7))
    page = login(team["nurse"]).get("/sessions/forms-due/")
    assert page.status_code == 200 and esk_session.patient.full_name in page.content.decode()
    services.do_mark_pmf_submitted(actor=team["nurse"], session=esk_session, reference="REMS-123")
    assert list(records.forms_due()) == []
    with pytest.raises(StepRefused, match="already"):
        services.do_mark_pmf_submitted(actor=team["nurse"], session=esk_session)


def test_pmf_cannot_be_marked_for_an_active_session(esk_session, team, now):
    walk(esk_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    with pytest.raises(StepRefused, match="after the session has ended"):
        services.do_mark_pmf_submitted(actor=team["nurse"], session=esk_session)


def test_printable_record_shows_the_administration_and_pmf(esk_session, team, now, login):
    _discharged(esk_session, team, now)
    page = login(team["nurse"]).get(f"/sessions/{esk_session.pk}/record/")
    text = page.content.decode()
    assert page.status_code == 200
    assert "Patient Monitoring Form" in text and "LOT-1" in text and "Modified Aldrete 10" in text
