"""Discharge is a hard gate: minimum monitoring time, Aldrete, BP, sedation, adult, driving."""

from __future__ import annotations

import datetime as dt

import pytest

from ketasafe.sessions import services
from ketasafe.sessions.exceptions import GateRefused, InvalidTransition, StepRefused
from ketasafe.sessions.models import DischargeAssessment, TreatmentSession
from ketasafe.sessions.state import Status

from .helpers import GOOD_ALDRETE, chair, final_check, schedule, sign_order, walk

pytestmark = pytest.mark.django_db


def _recovering(session, team, now, minutes_ago):
    walk(session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=minutes_ago))
    final_check(session, team["nurse"], now - dt.timedelta(minutes=2))
    return session


def _discharge(session, team, now, **kw):
    args = {"aldrete_answers": GOOD_ALDRETE, "responsible_adult_present": True,
            "driving_instructions_given": True}
    args.update(kw)
    return services.do_discharge(actor=team["nurse"], session=session, at=now, **args)


def test_esketamine_discharge_after_120_minutes_succeeds(esk_session, team, now):
    _recovering(esk_session, team, now, 121)
    _discharge(esk_session, team, now)
    esk_session.refresh_from_db()
    assert esk_session.status == Status.DISCHARGED
    assert esk_session.discharged_at == now
    assert DischargeAssessment.objects.get(session=esk_session).aldrete_total == 10


def test_esketamine_discharge_at_119_minutes_is_refused(esk_session, team, now):
    _recovering(esk_session, team, now, 119)
    with pytest.raises(GateRefused) as exc:
        _discharge(esk_session, team, now)
    assert "MIN-MONITORING" in str(exc.value) and "119 min" in str(exc.value)
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.RECOVERY


def test_post_discharge_at_119_minutes_is_refused_through_the_page(esk_session, team, now, login):
    _recovering(esk_session, team, now, 119)
    esk_session.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{esk_session.pk}/step/discharge/", {
        "row_version": esk_session.row_version, "activity": 2, "respiration": 2, "circulation": 2,
        "consciousness": 2, "oxygen": 2, "responsible_adult_present": "on",
        "driving_instructions_given": "on"})
    assert response.status_code == 409
    assert "MIN-MONITORING" in response.content.decode()
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.RECOVERY


@pytest.mark.parametrize("kw,code", [
    ({"aldrete_answers": [2, 2, 2, 1, 1]}, "ALDRETE"),
    ({"responsible_adult_present": False}, "RESPONSIBLE-ADULT"),
    ({"driving_instructions_given": False}, "DRIVING-INSTRUCTIONS"),
])
def test_each_discharge_criterion_blocks(esk_session, team, now, kw, code):
    _recovering(esk_session, team, now, 130)
    with pytest.raises(GateRefused) as exc:
        _discharge(esk_session, team, now, **kw)
    assert [r.code for r in exc.value.results if r.blocking] == [code]


def test_sedation_not_resolved_blocks_discharge(esk_session, team, now):
    _recovering(esk_session, team, now, 130)
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=1), moaas=4)
    with pytest.raises(GateRefused) as exc:
        _discharge(esk_session, team, now)
    assert "SEDATION-RESOLVED" in str(exc.value)


def test_high_bp_not_falling_blocks_but_falling_passes(esk_session, team, now):
    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=10), systolic=150, diastolic=88)
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=5), systolic=152, diastolic=88)
    with pytest.raises(GateRefused) as exc:
        _discharge(esk_session, team, now)
    assert "BP-BEFORE-DISCHARGE" in str(exc.value)
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=1), systolic=146, diastolic=86)
    _discharge(esk_session, team, now)
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.DISCHARGED


def test_no_recent_bp_blocks_discharge(esk_session, team, now):
    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    services.do_record_check(actor=team["nurse"], session=esk_session, code="x", moaas=5, at=now)
    with pytest.raises(GateRefused) as exc:
        _discharge(esk_session, team, now)
    assert "BP-BEFORE-DISCHARGE" in str(exc.value)


def test_discharge_from_monitoring_is_refused(esk_session, team, now):
    walk(esk_session, Status.MONITORING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    with pytest.raises(InvalidTransition):
        _discharge(esk_session, team, now)


def test_iv_discharge_needs_the_infusion_stopped_15_minutes(iv_session, team, now):
    # infusion 40 min, stopped 10 min ago
    walk(iv_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=50))
    final_check(iv_session, team["nurse"], now - dt.timedelta(minutes=1))
    with pytest.raises(GateRefused) as exc:
        _discharge(iv_session, team, now)
    assert "MIN-MONITORING" in str(exc.value)
    _discharge(iv_session, team, now + dt.timedelta(minutes=6))
    assert TreatmentSession.objects.get(pk=iv_session.pk).status == Status.DISCHARGED


def test_against_medical_advice_is_recorded_as_aborted_not_discharged(esk_session, team, now):
    _recovering(esk_session, team, now, 60)
    services.do_end(actor=team["nurse"], session=esk_session, kind="ama",
                    reason="patient insisted on leaving", at=now)
    esk_session.refresh_from_db()
    assert esk_session.status == Status.ABORTED
    assert esk_session.end_kind == "ama" and esk_session.discharged_at is None
    assert esk_session.end_reason == "patient insisted on leaving"


def test_cancel_after_dosing_is_refused_and_reason_is_required(esk_session, team, now):
    walk(esk_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=2))
    with pytest.raises(InvalidTransition):
        services.do_end(actor=team["nurse"], session=esk_session, kind="cancel", reason="x", at=now)
    with pytest.raises(StepRefused):
        services.do_end(actor=team["nurse"], session=esk_session, kind="abort", reason=" ", at=now)


def _iv_version_order(team, patient, now, make_staff, changes):
    from ketasafe.conftest import TEST_PASSWORD
    from ketasafe.protocols import services as protocol_services

    admin = make_staff("clinic_admin")
    version = protocol_services.do_create_protocol_version(
        actor=admin, protocol_id="iv-ketamine-depression", label="clinic", changes=changes)
    return protocol_services.do_sign_order(
        actor=team["prescriber"], patient=patient, protocol_version=version, sessions_ordered=4,
        dose_parameters={}, password=TEST_PASSWORD, course_start=(now - dt.timedelta(days=2)).date(),
        at=now - dt.timedelta(days=1))


def _iv_recovering(order, team, now, stopped_min_ago):
    from decimal import Decimal

    from . import helpers

    session = helpers.schedule(order, team["nurse"], now - dt.timedelta(hours=1),
                               prescriber=team["prescriber"])
    walk(session, Status.MONITORING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=40 + stopped_min_ago))
    services.do_record_check(actor=team["nurse"], session=session, code="after",
                             vitals={"systolic": Decimal(120), "diastolic": Decimal(80)}, moaas=5,
                             at=now - dt.timedelta(minutes=1))
    services.do_begin_recovery(actor=team["nurse"], session=session, at=now - dt.timedelta(minutes=1))
    final_check(session, team["nurse"], now - dt.timedelta(minutes=1))
    return session


def test_tighter_iv_checks_do_not_shorten_the_discharge_minimum(team, patient, now, make_staff, gate):
    """A clinic checking every minute after the infusion still waits 15 min to discharge."""
    order = _iv_version_order(team, patient, now, make_staff, {"every_min_after_infusion": 1})
    session = _iv_recovering(order, team, now, stopped_min_ago=2)
    with pytest.raises(GateRefused) as exc:
        _discharge(session, team, now)
    assert "at least 15 min are required" in str(exc.value)
    _discharge(session, team, now + dt.timedelta(minutes=13))
    assert TreatmentSession.objects.get(pk=session.pk).status == Status.DISCHARGED


def test_a_clinic_may_raise_the_iv_discharge_minimum(team, patient, now, make_staff, gate):
    order = _iv_version_order(team, patient, now, make_staff,
                              {"min_monitoring_after_infusion_min": 30})
    session = _iv_recovering(order, team, now, stopped_min_ago=20)
    with pytest.raises(GateRefused, match="at least 30 min are required"):
        _discharge(session, team, now)


def test_posting_discharge_with_aldrete_below_9_is_refused(esk_session, team, now, login):
    _recovering(esk_session, team, now, 130)
    esk_session.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{esk_session.pk}/step/discharge/", {
        "row_version": esk_session.row_version, "activity": 2, "respiration": 2, "circulation": 2,
        "consciousness": 1, "oxygen": 1, "responsible_adult_present": "on",
        "driving_instructions_given": "on"})
    assert response.status_code == 409
    assert "ALDRETE: modified Aldrete score 8" in response.content.decode()
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.RECOVERY
    assert not DischargeAssessment.objects.exists()


def test_after_a_cancellation_the_scheduled_numbers_stay_unique(gate, team, patient, now):
    """A scheduled number is provisional (check-in fixes it from the doses given); a session
    scheduled after a cancellation takes the number after the highest in use, so two scheduled
    sessions never show the same number."""
    order = sign_order(patient, team["prescriber"], "esketamine-trd", sessions=4, at=now - dt.timedelta(days=1))
    first, second, third = (schedule(order, team["nurse"], now + dt.timedelta(days=d)) for d in (1, 2, 3))
    services.do_end(actor=team["nurse"], session=second, kind="cancel", reason="patient unwell", at=now)
    fourth = services.do_schedule(actor=team["nurse"], order=order, scheduled_at=now + dt.timedelta(days=4),
                                  chair=chair())
    kept = (TreatmentSession.objects.filter(patient=patient).exclude(status=Status.CANCELLED)
            .order_by("session_number").values_list("pk", "session_number"))
    assert list(kept) == [(first.pk, 1), (third.pk, 3), (fourth.pk, 4)]
