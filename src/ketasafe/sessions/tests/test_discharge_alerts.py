"""Discharge and the monitor's alerts: an alert nobody acknowledged blocks discharge (a hard
criterion); the acknowledged ones are resolved by the system when the session is discharged, so
no alert is left open on a session that has left the chair board."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from ketasafe.sessions import services
from ketasafe.sessions.exceptions import GateRefused
from ketasafe.sessions.models import DischargeAssessment, SessionTransition, TreatmentSession
from ketasafe.sessions.rules import BpLimits, DischargeInputs, discharge_checks
from ketasafe.sessions.state import Status

from .helpers import GOOD_ALDRETE, final_check, walk

T0 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)

# Every other criterion met: only the alerts can fail.
READY = DischargeInputs(
    kind="esketamine", now=T0, dosing_started_at=T0 - dt.timedelta(minutes=130), min_monitoring_min=120,
    infusion_stopped_at=None, min_after_infusion_min=None, aldrete_total=10, aldrete_ready=True,
    last_bp=(124.0, 80.0, T0 - dt.timedelta(minutes=2)), previous_bp=None, age=40, limits=BpLimits(),
    last_moaas=5, responsible_adult_present=True, driving_instructions_given=True,
    adverse_events_missing_note=0, unacknowledged_alerts=0, unjudged_readings=0)


def test_discharge_rule_with_every_alert_acknowledged_passes():
    results = discharge_checks(READY)
    assert [r.code for r in results if r.blocking] == []
    check = next(r for r in results if r.code == "ALERTS-ACKNOWLEDGED")
    assert check.passed and check.message == "every monitor alert of this session has been acknowledged"


@pytest.mark.parametrize("count", [1, 3])
def test_discharge_rule_with_unacknowledged_alerts_is_a_hard_stop_naming_how_many(count):
    results = discharge_checks(dataclasses.replace(READY, unacknowledged_alerts=count))
    failed = [r for r in results if r.blocking]
    assert [r.code for r in failed] == ["ALERTS-ACKNOWLEDGED"]
    assert failed[0].hard and not failed[0].overridable
    assert failed[0].message.startswith(f"{count} monitor alert(s) of this session not acknowledged")


# --- through the service -------------------------------------------------------------------------

def _recovering(session, team, now):
    walk(session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(session, team["nurse"], now - dt.timedelta(minutes=2))
    session.refresh_from_db()
    return session


def _alert(session, now, code="SPO2_LOW", **kw):
    from ketasafe.monitoring.models import Alert

    return Alert.objects.create(session=session, chair=session.chair, patient=session.patient, code=code,
                                message=f"{code} test alert", raised_at=now - dt.timedelta(minutes=5), **kw)


def _discharge(session, team, now):
    return services.do_discharge(actor=team["nurse"], session=session, at=now, aldrete_answers=GOOD_ALDRETE,
                                 responsible_adult_present=True, driving_instructions_given=True)


@pytest.mark.django_db
def test_discharge_with_an_unacknowledged_alert_is_refused_and_changes_nothing(esk_session, team, now):
    from ketasafe.audit.models import AuditEntry

    session = _recovering(esk_session, team, now)
    raised = _alert(session, now)
    transitions = SessionTransition.objects.filter(session=session).count()
    with pytest.raises(GateRefused) as exc:
        _discharge(session, team, now)
    assert [r.code for r in exc.value.results if r.blocking] == ["ALERTS-ACKNOWLEDGED"]
    assert "1 monitor alert(s) of this session not acknowledged" in str(exc.value)
    session.refresh_from_db()
    assert session.status == Status.RECOVERY and session.discharged_at is None
    assert not DischargeAssessment.objects.exists()
    assert SessionTransition.objects.filter(session=session).count() == transitions
    raised.refresh_from_db()
    assert raised.status == "raised" and raised.resolved_at is None
    assert AuditEntry.objects.filter(action="refused", detail__startswith="do_discharge").exists()


@pytest.mark.django_db
def test_discharge_through_the_page_shows_the_unacknowledged_alert(esk_session, team, now, login):
    session = _recovering(esk_session, team, now)
    _alert(session, now)
    response = login(team["nurse"]).post(f"/sessions/{session.pk}/step/discharge/", {
        "row_version": session.row_version, "activity": 2, "respiration": 2, "circulation": 2,
        "consciousness": 2, "oxygen": 2, "responsible_adult_present": "on", "driving_instructions_given": "on"})
    assert response.status_code == 409
    assert "ALERTS-ACKNOWLEDGED" in response.content.decode()
    assert TreatmentSession.objects.get(pk=session.pk).status == Status.RECOVERY


@pytest.mark.django_db
def test_discharge_resolves_the_acknowledged_alerts_in_the_same_transaction_audited(esk_session, team, now):
    from ketasafe.audit.models import AuditEntry
    from ketasafe.monitoring import alerts
    from ketasafe.monitoring.models import Alert

    session = _recovering(esk_session, team, now)
    seen = _alert(session, now)
    alerts.do_acknowledge(actor=team["nurse"], alert=seen, now=now - dt.timedelta(minutes=4))
    done = _alert(session, now, code="HR_HIGH", status="resolved", resolved_at=now - dt.timedelta(minutes=3),
                  resolved_by=team["nurse"], resolution="settled")
    _discharge(session, team, now)
    assert TreatmentSession.objects.get(pk=session.pk).status == Status.DISCHARGED
    seen.refresh_from_db()
    assert (seen.status, seen.resolved_at, seen.resolved_by, seen.resolution) == (
        "resolved", now, None, "session discharged")
    assert seen.acknowledged_by == team["nurse"]  # who saw it stays on the record
    done.refresh_from_db()
    assert (done.resolution, done.resolved_by) == ("settled", team["nurse"])  # not touched again
    entry = AuditEntry.objects.get(object_type="monitoring.Alert", object_id=str(seen.pk),
                                   detail="alert SPO2_LOW resolved")
    assert entry.actor == "system:alerts" and "session discharged" in entry.changes
    assert not Alert.objects.filter(session=session, status__in=("raised", "acknowledged")).exists()


@pytest.mark.django_db
def test_a_refused_discharge_leaves_acknowledged_alerts_open(esk_session, team, now):
    from ketasafe.monitoring import alerts

    session = _recovering(esk_session, team, now)
    seen = _alert(session, now)
    alerts.do_acknowledge(actor=team["nurse"], alert=seen, now=now - dt.timedelta(minutes=4))
    with pytest.raises(GateRefused):
        services.do_discharge(actor=team["nurse"], session=session, at=now, aldrete_answers=[2, 2, 2, 1, 1],
                              responsible_adult_present=True, driving_instructions_given=True)
    seen.refresh_from_db()
    assert seen.status == "acknowledged" and seen.resolved_at is None


@pytest.mark.django_db
def test_a_reading_not_yet_judged_is_judged_at_discharge_and_its_alert_stops_it(
        esk_session, team, now, django_capture_on_commit_callbacks):
    """SpO2 82 % recorded, its evaluation not run (failed, or the process restarted) and the watch
    not yet round: discharge judges it first, and the unacknowledged alert refuses the discharge."""
    from decimal import Decimal

    from django.utils import timezone

    from ketasafe.monitoring.models import Alert
    from ketasafe.monitoring.services import do_record_manual_vitals

    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=2))
    esk_session.refresh_from_db()
    with django_capture_on_commit_callbacks(execute=False):
        do_record_manual_vitals(actor=team["nurse"], session=esk_session, values={"spo2": Decimal(82)},
                                observed_at=timezone.now())
    assert not Alert.objects.exists()
    with pytest.raises(GateRefused) as refused:
        services.do_discharge(actor=team["nurse"], session=esk_session, at=now, aldrete_answers=GOOD_ALDRETE,
                              responsible_adult_present=True, driving_instructions_given=True)
    assert "ALERTS-ACKNOWLEDGED" in {r.code for r in refused.value.results if r.blocking}
    assert Alert.objects.get(session=esk_session).code == "SPO2_LOW"
    esk_session.refresh_from_db()
    assert esk_session.status == Status.RECOVERY


def test_discharge_rule_with_readings_not_yet_judged_is_a_hard_stop():
    results = discharge_checks(dataclasses.replace(READY, unjudged_readings=2))
    blocking = [r for r in results if r.blocking]
    assert [r.code for r in blocking] == ["READINGS-JUDGED"] and blocking[0].hard
    assert "2 vital sign reading(s)" in blocking[0].message


@pytest.mark.django_db
def test_discharge_is_refused_while_the_alert_check_of_a_reading_keeps_failing(
        esk_session, team, now, monkeypatch, django_capture_on_commit_callbacks):
    """The alert check of SpO2 82 % fails, at entry and again at discharge: the patient does not
    leave before anyone knows whether it is an alarm."""
    from decimal import Decimal

    from django.utils import timezone

    from ketasafe.monitoring import alerts
    from ketasafe.monitoring.models import Alert
    from ketasafe.monitoring.services import do_record_manual_vitals

    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=2))
    esk_session.refresh_from_db()

    def fails(*args, **kwargs):
        raise RuntimeError("alert check failed")

    monkeypatch.setattr(alerts, "evaluate_session", fails)
    with django_capture_on_commit_callbacks(execute=True):
        do_record_manual_vitals(actor=team["nurse"], session=esk_session, values={"spo2": Decimal(82)},
                                observed_at=timezone.now())
    with pytest.raises(GateRefused) as refused:
        services.do_discharge(actor=team["nurse"], session=esk_session, at=now, aldrete_answers=GOOD_ALDRETE,
                              responsible_adult_present=True, driving_instructions_given=True)
    # The reading is unjudged, and the failed check itself is an alert nobody has acknowledged.
    assert {r.code for r in refused.value.results if r.blocking} == {"READINGS-JUDGED", "ALERTS-ACKNOWLEDGED"}
    assert Alert.objects.get(session=esk_session).code == alerts.ALERT_CHECK_FAILED
    esk_session.refresh_from_db()
    assert esk_session.status == Status.RECOVERY


@pytest.mark.django_db
def test_ending_a_session_resolves_its_acknowledged_alerts_and_leaves_the_others_open(esk_session, team, now):
    from ketasafe.monitoring import alerts
    from ketasafe.monitoring.models import Alert

    walk(esk_session, Status.MONITORING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=30))
    seen = Alert.objects.create(session=esk_session, chair=esk_session.chair, patient=esk_session.patient,
                                code="SBP_HIGH", message="SBP 185", raised_at=now - dt.timedelta(minutes=5))
    alerts.do_acknowledge(actor=team["nurse"], alert=seen, now=now - dt.timedelta(minutes=4))
    unseen = Alert.objects.create(session=esk_session, chair=esk_session.chair, patient=esk_session.patient,
                                  code="SPO2_LOW", message="SpO2 86", raised_at=now - dt.timedelta(minutes=1))
    services.do_end(actor=team["nurse"], session=esk_session, kind="ama", reason="left with a relative", at=now)
    seen.refresh_from_db()
    unseen.refresh_from_db()
    assert (seen.status, seen.resolved_at, seen.resolution) == (
        "resolved", now, "session ended (left against medical advice)")
    assert unseen.status == "raised"  # nobody has seen it: it stays on the board and escalates
