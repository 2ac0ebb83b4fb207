"""Dosing: only after the pre-checks (run again at the start), the computed dose, devices 5 min
apart, infusions stopped early only with a reason."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.conftest import TEST_PASSWORD
from ketasafe.protocols import services as protocol_services
from ketasafe.sessions import checks, services
from ketasafe.sessions.exceptions import GateRefused, InvalidTransition, StepRefused
from ketasafe.sessions.models import Administration, DeviceDose, TreatmentSession
from ketasafe.sessions.state import Status

from .helpers import dose_token, walk

pytestmark = pytest.mark.django_db


def test_post_to_the_dose_step_while_prechecks_failed_is_refused(esk_session, team, now, login):
    walk(esk_session, Status.CHECKED_IN, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    esk_session.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{esk_session.pk}/step/start_dosing/", {
        "row_version": esk_session.row_version, "lot_number": "LOT9",
        "observing_prescriber": team["prescriber"].pk, "expected_dose": dose_token(esk_session)})
    assert response.status_code == 409
    assert "needs it to be pre checks passed" in response.content.decode()
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.CHECKED_IN
    assert not Administration.objects.exists()


def test_dosing_start_reruns_the_prechecks(esk_session, team, now):
    walk(esk_session, Status.PRE_CHECKS_PASSED, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now)
    # 30 minutes later the pre-dose vitals (taken 10 min before 'now') are too old.
    with pytest.raises(GateRefused) as exc:
        services.do_start_dosing(actor=team["nurse"], session=esk_session, lot_number="L",
                                 observing_prescriber=team["prescriber"],
                                 at=now + dt.timedelta(minutes=25))
    assert "VITALS-RECENT" in str(exc.value)
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.PRE_CHECKS_PASSED


def test_the_dose_is_computed_from_the_order_and_dated_weight(iv_session, team, now, login):
    walk(iv_session, Status.PRE_CHECKS_PASSED, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now)
    iv_session.refresh_from_db()
    # A typed dose in the POST is not a field of the form: it cannot change anything.
    response = login(team["nurse"]).post(f"/sessions/{iv_session.pk}/step/start_dosing/", {
        "row_version": iv_session.row_version, "lot_number": "KET-77",
        "observing_prescriber": team["prescriber"].pk, "dose_mg": "400",
        "expected_dose": dose_token(iv_session)})
    assert response.status_code == 302
    adm = Administration.objects.get(session=iv_session)
    # 80 kg x 0.5 mg/kg = 40.0 mg = 4.00 mL of 10 mg/mL in 100 mL over 40 min = 150 mL/h
    assert (adm.dose_mg, adm.drug_volume_ml, adm.rate_ml_per_h) == (
        Decimal("40.0"), Decimal("4.00"), Decimal("150.0"))
    assert adm.weight_kg == Decimal("80.0") and adm.administering_nurse == team["nurse"]
    assert adm.observing_prescriber == team["prescriber"] and adm.lot_number == "KET-77"


def test_observing_prescriber_must_be_a_prescriber(esk_session, team, now):
    walk(esk_session, Status.PRE_CHECKS_PASSED, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now)
    with pytest.raises(StepRefused, match="observing prescriber"):
        services.do_start_dosing(actor=team["nurse"], session=esk_session, lot_number="L",
                                 observing_prescriber=team["nurse2"], at=now)


def test_esketamine_devices_must_be_5_minutes_apart(gate, team, patient, now):
    from . import helpers

    order = helpers.sign_order(patient, team["prescriber"], "esketamine-trd",
                               dose_parameters={"dose_mg": 84}, at=now - dt.timedelta(days=5),
                               course_start=(now - dt.timedelta(days=6)).date())
    first = helpers.schedule(order, team["nurse"], now - dt.timedelta(days=4), prescriber=team["prescriber"])
    patient.measurements.create(measured_on=(now - dt.timedelta(days=30)).date(),
                                weight_kg=Decimal("80.0"), recorded_by=team["nurse"])
    walk(first, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(days=4))
    services.do_end(actor=team["nurse"], session=first, kind="abort", reason="t",
                    at=now - dt.timedelta(days=4))
    session = helpers.schedule(order, team["nurse"], now, chair_n=2, prescriber=team["prescriber"])
    walk(session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    adm = Administration.objects.get(session=session)
    assert (adm.dose_mg, adm.devices_planned) == (Decimal("84.0"), 3)  # session 2: the ordered 84 mg
    with pytest.raises(StepRefused, match="at least 5 min after device 1"):
        services.do_record_device(actor=team["nurse"], session=session, at=now + dt.timedelta(minutes=4))
    with pytest.raises(StepRefused, match="record every device"):
        services.do_finish_dosing(actor=team["nurse"], session=session, at=now + dt.timedelta(minutes=4))
    services.do_record_device(actor=team["nurse"], session=session, at=now + dt.timedelta(minutes=5))
    with pytest.raises(StepRefused):
        services.do_record_device(actor=team["nurse"], session=session,
                                  at=now + dt.timedelta(minutes=9, seconds=59))
    services.do_record_device(actor=team["nurse"], session=session, at=now + dt.timedelta(minutes=10))
    with pytest.raises(StepRefused, match="All 3 devices"):
        services.do_record_device(actor=team["nurse"], session=session, at=now + dt.timedelta(minutes=20))
    assert DeviceDose.objects.filter(administration=adm).count() == 3
    services.do_finish_dosing(actor=team["nurse"], session=session, at=now + dt.timedelta(minutes=11))
    assert TreatmentSession.objects.get(pk=session.pk).status == Status.MONITORING


def test_session_1_of_trd_is_56_mg(esk_session, team, now):
    walk(esk_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    adm = Administration.objects.get(session=esk_session)
    assert (adm.dose_mg, adm.devices_planned, adm.minutes_between_devices) == (Decimal("56.0"), 2, 5)


def test_iv_stopped_early_needs_a_reason_and_rate_changes_are_recorded(iv_session, team, now):
    walk(iv_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    services.do_rate_change(actor=team["nurse"], session=iv_session, rate_ml_per_h=Decimal("120"),
                            reason="patient dizzy", at=now + dt.timedelta(minutes=10))
    with pytest.raises(StepRefused, match="stopping early needs a reason"):
        services.do_finish_dosing(actor=team["nurse"], session=iv_session, at=now + dt.timedelta(minutes=20))
    services.do_finish_dosing(actor=team["nurse"], session=iv_session, reason="emergence reaction",
                              at=now + dt.timedelta(minutes=20))
    adm = Administration.objects.get(session=iv_session)
    assert adm.stopped_at == now + dt.timedelta(minutes=20)
    assert adm.rate_changes.get().rate_ml_per_h == Decimal("120.0")
    with pytest.raises(InvalidTransition):
        services.do_rate_change(actor=team["nurse"], session=iv_session, rate_ml_per_h=Decimal(1),
                                reason="x", at=now + dt.timedelta(minutes=21))


def test_recovery_needs_the_40_minute_esketamine_check(esk_session, team, now):
    walk(esk_session, Status.MONITORING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=50))
    with pytest.raises(StepRefused, match="post-dose"):
        services.do_begin_recovery(actor=team["nurse"], session=esk_session, at=now)


# --- the dose the page showed is the dose given --------------------------------------------


def _start_dosing_form(client, session):
    """The hidden fields of the Start-dosing form as the page renders them."""
    import re

    page = client.get(f"/sessions/{session.pk}/").content.decode()
    form = page[page.index('id="step-start_dosing"'):]
    token = re.search(r'name="expected_dose" value="([^"]+)"', form)
    version = re.search(r'name="row_version" value="(\d+)"', form)
    assert token and version, "the Start-dosing form carries the dose and the row version"
    return page, {"row_version": version.group(1), "expected_dose": token.group(1)}


def test_a_new_order_version_after_the_page_was_loaded_is_refused_naming_both_doses(
        iv_session, team, now, login, patient):
    walk(iv_session, Status.PRE_CHECKS_PASSED, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now)
    client = login(team["nurse"])
    page, hidden = _start_dosing_form(client, iv_session)
    assert "40 mg (0.5 mg/kg x 80 kg)" in page  # what the nurse sees and prepares
    # meanwhile the prescriber changes the order (a new version, 0.75 mg/kg): no row_version bump
    protocol_services.do_sign_order(
        actor=team["prescriber"], patient=patient, protocol_version=iv_session.order.protocol_version,
        sessions_ordered=8, dose_parameters={"mg_per_kg": "0.75"}, password=TEST_PASSWORD,
        supersedes=iv_session.order, at=now)
    response = client.post(f"/sessions/{iv_session.pk}/step/start_dosing/", {
        **hidden, "lot_number": "K1", "observing_prescriber": team["prescriber"].pk})
    assert response.status_code == 409
    text = response.content.decode()
    assert "The computed dose changed from 40 mg (0.5 mg/kg" in text and "to 60 mg (0.75" in text
    assert not Administration.objects.filter(session=iv_session).exists()
    # The page now shows the new dose; starting from it gives exactly that dose.
    page, hidden = _start_dosing_form(client, iv_session)
    assert "60 mg (0.75 mg/kg x 80 kg)" in page
    response = client.post(f"/sessions/{iv_session.pk}/step/start_dosing/", {
        **hidden, "lot_number": "K1", "observing_prescriber": team["prescriber"].pk})
    assert response.status_code == 302
    assert Administration.objects.get(session=iv_session).dose_mg == Decimal("60.0")


def test_a_new_weight_after_the_page_was_loaded_is_refused(iv_session, team, now, login, patient):
    walk(iv_session, Status.PRE_CHECKS_PASSED, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now)
    client = login(team["nurse"])
    _, hidden = _start_dosing_form(client, iv_session)
    patient.measurements.create(measured_on=checks.clinic_date(now), weight_kg=Decimal("120.0"),
                                recorded_by=team["nurse"])
    response = client.post(f"/sessions/{iv_session.pk}/step/start_dosing/", {
        **hidden, "lot_number": "K1", "observing_prescriber": team["prescriber"].pk})
    assert response.status_code == 409
    assert "changed from 40 mg" in response.content.decode()
    assert "to 60 mg (0.5 mg/kg x 120 kg)" in response.content.decode()
    assert not Administration.objects.filter(session=iv_session).exists()


@pytest.mark.parametrize("token", ["", "forged:token"])
def test_a_missing_or_forged_dose_token_gives_nothing(iv_session, team, now, login, token):
    walk(iv_session, Status.PRE_CHECKS_PASSED, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now)
    iv_session.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{iv_session.pk}/step/start_dosing/", {
        "row_version": iv_session.row_version, "expected_dose": token, "lot_number": "K1",
        "observing_prescriber": team["prescriber"].pk})
    assert response.status_code == (400 if not token else 409)
    assert not Administration.objects.filter(session=iv_session).exists()


# --- the stop time of an infusion is audited -------------------------------------------------


def test_finishing_an_infusion_audits_its_stop_time(iv_session, team, now):
    walk(iv_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    stop = now + dt.timedelta(minutes=20)
    services.do_finish_dosing(actor=team["nurse"], session=iv_session, reason="emergence", at=stop)
    adm = Administration.objects.get(session=iv_session)
    entry = AuditEntry.objects.get(object_type="treatment_sessions.Administration",
                                   object_id=str(adm.pk), action="update")
    changes = json.loads(entry.changes)
    assert changes["before"] == {"stopped_at": None}
    assert changes["after"]["stopped_at"].startswith(stop.isoformat()[:16])
    assert "emergence" in entry.detail


def test_aborting_a_running_infusion_audits_its_stop_time(iv_session, team, now):
    walk(iv_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    services.do_end(actor=team["nurse"], session=iv_session, kind="abort", reason="hypertension",
                    at=now + dt.timedelta(minutes=5))
    adm = Administration.objects.get(session=iv_session)
    entry = AuditEntry.objects.get(object_type="treatment_sessions.Administration",
                                   object_id=str(adm.pk), action="update")
    assert json.loads(entry.changes)["before"] == {"stopped_at": None}
    assert "hypertension" in entry.detail


def test_the_infusion_cannot_be_run_faster_than_the_computed_rate(iv_session, team, now):
    walk(iv_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    computed = Administration.objects.get(session=iv_session).rate_ml_per_h
    with pytest.raises(StepRefused, match="cannot go above the computed"):
        services.do_rate_change(actor=team["nurse"], session=iv_session, rate_ml_per_h=computed + 1,
                                reason="faster", at=now + dt.timedelta(minutes=5))
    services.do_rate_change(actor=team["nurse"], session=iv_session, rate_ml_per_h=computed,
                            reason="back to the ordered rate", at=now + dt.timedelta(minutes=6))
    assert [c.rate_ml_per_h for c in Administration.objects.get(session=iv_session).rate_changes.all()] == [
        computed]


def test_a_device_time_stated_ahead_does_not_shorten_the_gap(esk_session, team, now):
    walk(esk_session, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"], dose_at=now)
    with pytest.raises(StepRefused, match="at least 5 min after device 1"):
        services.do_record_device(actor=team["nurse"], session=esk_session, at=now + dt.timedelta(minutes=4),
                                  given_at=now + dt.timedelta(minutes=5))  # within the clock tolerance
    assert DeviceDose.objects.filter(administration__session=esk_session).count() == 1


def test_the_post_dose_check_cannot_be_a_reading_from_before_it_is_due(esk_session, team, now):
    walk(esk_session, Status.MONITORING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=50))
    with pytest.raises(StepRefused, match="40 min after the first dose"):
        services.do_record_check(actor=team["nurse"], session=esk_session, code="post-dose",
                                 vitals={"systolic": 122, "diastolic": 78},
                                 observed_at=now - dt.timedelta(minutes=49), at=now)
    with pytest.raises(StepRefused, match="post-dose"):
        services.do_begin_recovery(actor=team["nurse"], session=esk_session, at=now)
    services.do_record_check(actor=team["nurse"], session=esk_session, code="post-dose",
                             vitals={"systolic": 122, "diastolic": 78},
                             observed_at=now - dt.timedelta(minutes=10), at=now)
    services.do_begin_recovery(actor=team["nurse"], session=esk_session, at=now)
