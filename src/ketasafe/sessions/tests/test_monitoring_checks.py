"""Scheduled checks per protocol, MOAA/S and dissociation entries, overdue flags."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ketasafe.monitoring.services import latest_vitals
from ketasafe.sessions import checks, services
from ketasafe.sessions.exceptions import InvalidTransition, StepRefused
from ketasafe.sessions.models import MonitoringCheck
from ketasafe.sessions.rules import check_schedule, overdue
from ketasafe.sessions.state import Status

from .helpers import walk

T0 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)


def test_esketamine_schedule_is_pre_dose_40_min_and_before_discharge():
    plan = check_schedule(checkpoints=[("pre-dose", None), ("post-dose", 40), ("before-discharge", None)],
                          every_min_during=None, every_min_after=None, dosing_started_at=T0,
                          infusion_end=None, infusion_stopped=False, now=T0,
                          min_monitoring_min=120)
    assert [(c.code, c.due_at) for c in plan] == [
        ("pre-dose", None), ("post-dose", T0 + dt.timedelta(minutes=40)),
        ("before-discharge", T0 + dt.timedelta(minutes=120))]


def test_iv_schedule_is_every_10_min_during_and_every_15_after():
    stop = T0 + dt.timedelta(minutes=40)
    plan = check_schedule(checkpoints=[("pre-infusion", None), ("before-discharge", None)],
                          every_min_during=10, every_min_after=15, dosing_started_at=T0,
                          infusion_end=stop, infusion_stopped=True, now=stop + dt.timedelta(minutes=31))
    codes = [c.code for c in plan]
    assert codes == ["pre-infusion", "during-10", "during-20", "during-30", "after-15", "after-30",
                     "after-45", "before-discharge"]
    late = overdue(plan, {"during-10"}, stop + dt.timedelta(minutes=31))
    assert [c.code for c in late] == ["during-20", "during-30", "after-15"]


pytestmark_db = pytest.mark.django_db


@pytestmark_db
def test_overdue_checks_are_flagged_on_the_session_page(iv_session, team, now, login):
    walk(iv_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=23))
    states = dict((c.code, s) for c, s in checks.schedule_for(iv_session, now))
    assert states["during-10"] == "overdue" and states["during-20"] == "due"
    services.do_record_check(actor=team["nurse"], session=iv_session, code="during-10",
                             vitals={"systolic": Decimal(130), "diastolic": Decimal(80)}, moaas=4,
                             at=now)
    page = login(team["nurse"]).get(f"/sessions/{iv_session.pk}/").content.decode()
    assert "Overdue checks" not in page
    services_time = now + dt.timedelta(minutes=10)
    states = dict((c.code, s) for c, s in checks.schedule_for(iv_session, services_time))
    assert states["during-20"] == "overdue" and states["during-10"] == "done"


@pytestmark_db
def test_page_shows_overdue_banner(esk_session, team, now, login):
    walk(esk_session, Status.MONITORING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=50))
    page = login(team["nurse"]).get(f"/sessions/{esk_session.pk}/").content.decode()
    assert "Overdue checks" in page and "post-dose" in page


@pytestmark_db
def test_check_records_vitals_moaas_and_dissociation(esk_session, team, now):
    walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now + dt.timedelta(minutes=30))
    check = services.do_record_check(
        actor=team["nurse"], session=esk_session, code="pre-dose",
        vitals={"systolic": Decimal(120), "diastolic": Decimal(75), "spo2": Decimal(97)}, moaas=5,
        dissociation_scale="cadss6", dissociation_answers=["0", "1", "0", "2", "0", "0"], at=now)
    assert (check.moaas, check.dissociation_total) == (5, 3)
    assert set(latest_vitals(esk_session)) == {"systolic", "diastolic", "spo2"}
    full = services.do_record_check(actor=team["nurse"], session=esk_session, code="extra",
                                    dissociation_scale="cadss", dissociation_answers=[1] * 23, at=now)
    assert full.dissociation_total == 23


@pytestmark_db
@pytest.mark.parametrize("kwargs,match", [
    ({"moaas": 6}, "MOAA/S"),
    ({"dissociation_scale": "cadss6", "dissociation_answers": [0, 1]}, "6 items"),
    ({"dissociation_scale": "cadss", "dissociation_answers": [5] * 23}, "cadss"),
    ({"vitals": {"systolic": Decimal(400)}}, "Vitals not saved"),
    ({}, "Enter vitals"),
])
def test_bad_check_input_is_refused_and_nothing_is_stored(esk_session, team, now, kwargs, match):
    walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now + dt.timedelta(minutes=30))
    with pytest.raises(StepRefused, match=match):
        services.do_record_check(actor=team["nurse"], session=esk_session, code="x", at=now, **kwargs)
    assert not MonitoringCheck.objects.exists()
    assert latest_vitals(esk_session) == {}


@pytestmark_db
def test_checks_are_refused_before_check_in_and_in_the_future(esk_session, team, now):
    with pytest.raises(InvalidTransition):
        services.do_record_check(actor=team["nurse"], session=esk_session, code="x", moaas=5, at=now)
    services.do_check_in(actor=team["nurse"], session=esk_session, at=now)
    with pytest.raises(StepRefused, match="future"):
        services.do_record_check(actor=team["nurse"], session=esk_session, code="x", moaas=5,
                                 observed_at=now + dt.timedelta(minutes=5), at=now)
