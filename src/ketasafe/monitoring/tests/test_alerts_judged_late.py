"""No reading goes unjudged: a reading whose on-commit evaluation failed or never ran (the
process stopped between the commit and the evaluation) is judged by the periodic watch, once."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from ketasafe.monitoring import alerts
from ketasafe.monitoring.alerts import do_acknowledge, do_resolve, run_watch
from ketasafe.monitoring.ingest import process_message
from ketasafe.monitoring.models import Alert, Observation
from ketasafe.monitoring.services import do_record_manual_vitals

from .helpers import make_chair, make_session, oru

pytestmark = pytest.mark.django_db
LATER = alerts.JUDGE_PENDING_AFTER + dt.timedelta(seconds=1)


@pytest.fixture
def session(make_patient):
    return make_session(make_patient(), chair=make_chair())


def _numerics(session) -> set[bool]:
    return set(Observation.objects.filter(session=session).exclude(value=None).exclude(kind="")
               .values_list("judged", flat=True))


def test_a_reading_whose_evaluation_failed_is_judged_by_the_watch(session, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    def fails(*args, **kwargs):
        raise RuntimeError("database is locked")

    with monkeypatch.context() as patched:
        patched.setattr(alerts, "evaluate_session", fails)
        with django_capture_on_commit_callbacks(execute=True):
            assert b"MSA|AA|" in process_message(oru("F1", systolic=190))
    assert not Alert.objects.exists() and _numerics(session) == {False}
    result = run_watch(timezone.now() + LATER)
    assert result["judged_late"] == 5
    assert Alert.objects.get().code == "SBP_HIGH" and _numerics(session) == {True}
    assert run_watch(timezone.now() + 2 * LATER)["judged_late"] == 0


def test_a_reading_stored_just_before_the_process_stopped_is_judged_by_the_watch(
        session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):  # committed; its callbacks never ran
        process_message(oru("K1", spo2=86))
    # The monitor sends it again after the restart: acknowledged, not stored again, not judged.
    with django_capture_on_commit_callbacks(execute=True):
        assert b"MSA|AA|" in process_message(oru("K1", spo2=86))
    assert not Alert.objects.exists()
    assert run_watch(timezone.now())["judged_late"] == 0  # too young: its own evaluation may be running
    run_watch(timezone.now() + LATER)
    assert Alert.objects.get().code == "SPO2_LOW"


def test_manual_vitals_whose_evaluation_never_ran_are_judged_by_the_watch(session, make_staff,
                                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False):
        do_record_manual_vitals(actor=make_staff("nurse"), session=session,
                                values={"systolic": 120, "diastolic": 115}, observed_at=timezone.now())
    run_watch(timezone.now() + LATER)
    assert Alert.objects.get().code == "DBP_HIGH"


def test_a_judged_reading_is_not_judged_again_after_its_alert_was_resolved(session, make_staff,
                                                                           django_capture_on_commit_callbacks):
    nurse = make_staff("nurse")
    with django_capture_on_commit_callbacks(execute=True):
        process_message(oru("J1", systolic=190))
    alert = Alert.objects.get()
    do_acknowledge(actor=nurse, alert=alert)
    do_resolve(actor=nurse, alert=alert, note="rechecked by hand: 150/85")
    assert _numerics(session) == {True}
    assert run_watch(timezone.now() + LATER)["judged_late"] == 0
    assert Alert.objects.count() == 1


def test_a_reading_of_a_session_that_left_the_chair_before_its_evaluation_is_still_judged(
        session, django_capture_on_commit_callbacks):
    """Stored while the patient was in the chair; the session ended before the evaluation ran:
    the alert is raised on it (the board lists it with the sessions no longer in a chair)."""
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        process_message(oru("L1", spo2=84))
    type(session).objects.filter(pk=session.pk).update(status="aborted")
    for callback in callbacks:
        callback()
    assert Alert.objects.get().code == "SPO2_LOW" and _numerics(session) == {True}


def test_an_unjudged_reading_of_an_ended_session_is_judged_by_the_watch(make_patient):
    ended = make_session(make_patient(), chair=make_chair("CHAIR9"), status="discharged")
    Observation.objects.create(session=ended, patient=ended.patient, kind="systolic", value=200,
                               observed_at=timezone.now(), source="manual")
    assert run_watch(timezone.now() + LATER)["judged_late"] == 1
    assert Alert.objects.get().session == ended


def test_a_failure_while_raising_leaves_the_readings_unjudged_and_the_watch_raises_it_once(
        session, make_staff, monkeypatch, django_capture_on_commit_callbacks):
    """The mark and the alerts are one transaction: a failure while raising (here the alert's
    audit entry) leaves the reading unjudged, not judged without its alert."""
    from ketasafe import audit

    real = audit.record

    def fails(*args, **kwargs):
        if kwargs.get("actor") == alerts.SYSTEM:
            raise RuntimeError("audit failed")
        return real(*args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(audit, "record", fails)
        with django_capture_on_commit_callbacks(execute=True):
            process_message(oru("M1", systolic=190))
    assert not Alert.objects.exists() and _numerics(session) == {False}
    run_watch(timezone.now() + LATER)
    alert = Alert.objects.get()
    nurse = make_staff("nurse")
    do_acknowledge(actor=nurse, alert=alert)
    do_resolve(actor=nurse, alert=alert, note="cuff artefact; 135/80 by hand")
    run_watch(timezone.now() + 2 * LATER)
    assert Alert.objects.count() == 1


def test_a_late_reading_does_not_re_raise_the_resolved_alert_of_a_newer_one(session, make_staff,
                                                                            django_capture_on_commit_callbacks):
    """The watch judges the late reading on its own, not the latest of its kind again."""
    with django_capture_on_commit_callbacks(execute=False):  # SpO2 96: its evaluation never ran
        process_message(oru("N1", spo2=96, at=timezone.now() - dt.timedelta(minutes=2)))
    with django_capture_on_commit_callbacks(execute=True):
        process_message(oru("N2", spo2=85))
    alert = Alert.objects.get()
    nurse = make_staff("nurse")
    do_acknowledge(actor=nurse, alert=alert)
    do_resolve(actor=nurse, alert=alert, note="probe off the finger")
    assert run_watch(timezone.now() + LATER)["judged_late"] == 5
    assert Alert.objects.count() == 1


def test_a_session_whose_evaluation_keeps_failing_does_not_crowd_out_the_others(make_patient, monkeypatch,
                                                                                django_capture_on_commit_callbacks):
    failing = make_session(make_patient(), chair=make_chair("Chair 1", "KETA^^CHAIR1"))
    other = make_session(make_patient(), chair=make_chair("Chair 2", "KETA^^CHAIR2"))
    with django_capture_on_commit_callbacks(execute=False):  # nothing judged on commit
        for n in range(3):
            process_message(oru(f"A{n}", bed="KETA^^CHAIR1", spo2=85))
        process_message(oru("B1", bed="KETA^^CHAIR2", spo2=85))
    real = alerts.evaluate_session

    def fails_for_one(session_id, **kwargs):
        if session_id == failing.pk:
            raise RuntimeError("this session's evaluation keeps failing")
        return real(session_id, **kwargs)

    monkeypatch.setattr(alerts, "evaluate_session", fails_for_one)
    monkeypatch.setattr(alerts, "JUDGE_PENDING_BATCH", 5)  # fewer than the failing session's 15 numerics
    assert run_watch(timezone.now() + LATER)["judged_late"] == 5
    assert Alert.objects.get(code="SPO2_LOW").session == other
    assert Alert.objects.get(code=alerts.ALERT_CHECK_FAILED).session == failing


@pytest.mark.django_db(transaction=True)
def test_two_evaluations_of_one_session_at_once_both_finish(make_patient, monkeypatch):
    """E.g. the watch and a monitor batch's evaluation, raising overlapping alerts: evaluations of
    one session wait for each other (session row first, the audit chain last) instead of
    deadlocking on PostgreSQL, which would roll back one of them with its alerts."""
    from decimal import Decimal

    from django.db import connection

    from ketasafe.lib.tests.threads import in_threads, slow_audit

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite locks the whole database)")
    session = make_session(make_patient(), chair=make_chair())
    now = timezone.now()

    def reading(kind: str, value: int) -> int:
        return Observation.objects.create(session=session, patient=session.patient, kind=kind, value=Decimal(value),
                                          observed_at=now, source="manual").pk

    first_ids, second_ids = [reading("spo2", 84)], [reading("heart_rate", 150), reading("spo2", 85)]
    first_auditing = slow_audit(monkeypatch, seconds=1.0, threads=lambda name: name == "first")

    def second():
        first_auditing.wait(10)
        return alerts.evaluate_session(session.pk, kinds=set(), observation_ids=second_ids, resolve_stale=False)

    results = in_threads({
        "first": lambda: alerts.evaluate_session(session.pk, kinds=set(), observation_ids=first_ids,
                                                 resolve_stale=False),
        "second": second})
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    assert sorted(Alert.objects.values_list("code", flat=True)) == ["HR_HIGH", "SPO2_LOW"]
    assert set(Observation.objects.values_list("judged", flat=True)) == {True}


def test_when_the_alert_check_keeps_failing_the_board_says_so(session, monkeypatch,
                                                              django_capture_on_commit_callbacks):
    def fails(*args, **kwargs):
        raise RuntimeError("a bug in the rules")

    monkeypatch.setattr(alerts, "evaluate_session", fails)
    with django_capture_on_commit_callbacks(execute=True):
        process_message(oru("Z1", spo2=80))
    run_watch(timezone.now() + LATER)
    alert = Alert.objects.get()
    assert alert.code == alerts.ALERT_CHECK_FAILED and alert.status == "raised"
    assert "watch the monitor itself" in alert.message
    run_watch(timezone.now() + 2 * LATER)  # one open alert, not one a pass
    assert Alert.objects.count() == 1
