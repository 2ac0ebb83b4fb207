"""Overrides: soft checks only, a prescriber with a reason, a DIFFERENT clinician re-authenticating."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ketasafe.audit.models import AuditEntry
from ketasafe.conftest import TEST_PASSWORD
from ketasafe.sessions import services
from ketasafe.sessions.exceptions import GateRefused, OverrideRefused, ReauthFailed
from ketasafe.sessions.models import Override, TreatmentSession
from ketasafe.sessions.state import Status

from .helpers import GOOD_VITALS, YES_CHECKLIST

pytestmark = pytest.mark.django_db
REASON = "BP rise weighed against the benefit; recheck at 40 min"


def _checked_in(session, team, now, systolic=150):
    services.do_check_in(actor=team["nurse"], session=session, at=now - dt.timedelta(minutes=20))
    services.do_update_checklist(actor=team["nurse"], session=session, values=YES_CHECKLIST,
                                 prescriber_on_site=team["prescriber"], at=now)
    services.do_record_check(actor=team["nurse"], session=session, code="pre-dose",
                             vitals={**GOOD_VITALS, "systolic": Decimal(systolic)}, at=now)
    return session


def _override(session, team, now, *, actor=None, confirmer=None, password=TEST_PASSWORD,
              code="BP-HIGH", reason=REASON):
    return services.do_override(actor=actor or team["prescriber"], session=session, check_code=code,
                                reason=reason, confirmer_username=(confirmer or team["nurse"]).username,
                                confirmer_password=password, at=now)


def test_soft_check_overridden_by_prescriber_and_second_clinician(esk_session, team, now):
    _checked_in(esk_session, team, now)
    with pytest.raises(GateRefused):
        services.do_pass_prechecks(actor=team["nurse"], session=esk_session, at=now)
    override = _override(esk_session, team, now)
    assert (override.prescriber, override.confirmed_by) == (team["prescriber"], team["nurse"])
    services.do_pass_prechecks(actor=team["nurse"], session=esk_session, at=now)
    esk_session.refresh_from_db()
    assert esk_session.status == Status.PRE_CHECKS_PASSED
    bp_high = next(r for r in esk_session.precheck_results if r["code"] == "BP-HIGH")
    assert bp_high["overridden"] is True and bp_high["passed"] is False
    entry = AuditEntry.objects.filter(object_type="treatment_sessions.Override").get()
    assert "confirmed by" in entry.detail and REASON in entry.changes


def test_hard_check_can_never_be_overridden(esk_session, team, now):
    _checked_in(esk_session, team, now, systolic=190)
    with pytest.raises(OverrideRefused, match="hard stop"):
        _override(esk_session, team, now, code="BP-CRISIS")
    services.do_update_checklist(actor=team["nurse"], session=esk_session,
                                 values={"ride_home_arranged": None}, at=now)
    with pytest.raises(OverrideRefused, match="hard stop"):
        _override(esk_session, team, now, code="RIDE-HOME")
    assert not Override.objects.exists()
    assert AuditEntry.objects.filter(action="refused", detail__contains="hard stop").count() == 2


def test_the_second_clinician_must_be_a_different_person(esk_session, team, now):
    _checked_in(esk_session, team, now)
    with pytest.raises(OverrideRefused, match="different person"):
        _override(esk_session, team, now, confirmer=team["prescriber"])
    assert not Override.objects.exists()


def test_the_second_clinician_must_re_authenticate(esk_session, team, now):
    _checked_in(esk_session, team, now)
    with pytest.raises(ReauthFailed):
        _override(esk_session, team, now, password="wrong password entirely")
    assert not Override.objects.exists()


def test_the_second_clinician_needs_confirm_override(esk_session, team, now, make_staff):
    _checked_in(esk_session, team, now)
    desk = make_staff("front_desk")
    with pytest.raises(OverrideRefused, match="may not confirm"):
        _override(esk_session, team, now, confirmer=desk)


def test_only_a_prescriber_can_override_and_a_reason_is_required(esk_session, team, now):
    _checked_in(esk_session, team, now)
    with pytest.raises(OverrideRefused, match="Only a prescriber"):
        _override(esk_session, team, now, actor=team["nurse2"])
    with pytest.raises(OverrideRefused, match="reason"):
        _override(esk_session, team, now, reason="  ok  ")


def test_a_passing_check_is_not_overridden(esk_session, team, now):
    _checked_in(esk_session, team, now, systolic=120)
    with pytest.raises(OverrideRefused, match="nothing to override"):
        _override(esk_session, team, now)


def test_nurse_cannot_post_an_override(esk_session, team, now, login):
    _checked_in(esk_session, team, now)
    response = login(team["nurse"]).post(f"/sessions/{esk_session.pk}/step/override/", {
        "row_version": TreatmentSession.objects.get(pk=esk_session.pk).row_version,
        "check_code": "BP-HIGH", "reason": REASON, "confirmer_username": team["nurse2"].username,
        "confirmer_password": TEST_PASSWORD})
    assert response.status_code == 403
    assert not Override.objects.exists()


def test_override_through_the_page_and_the_report(esk_session, team, now, login):
    _checked_in(esk_session, team, now)
    client = login(team["prescriber"])
    response = client.post(f"/sessions/{esk_session.pk}/step/override/", {
        "row_version": TreatmentSession.objects.get(pk=esk_session.pk).row_version,
        "check_code": "BP-HIGH", "reason": REASON, "confirmer_username": team["nurse2"].username,
        "confirmer_password": "not the password"})
    assert response.status_code == 403 and not Override.objects.exists()
    response = client.post(f"/sessions/{esk_session.pk}/step/override/", {
        "row_version": TreatmentSession.objects.get(pk=esk_session.pk).row_version,
        "check_code": "BP-HIGH", "reason": REASON, "confirmer_username": team["nurse2"].username,
        "confirmer_password": TEST_PASSWORD})
    assert response.status_code == 302
    report = login(team["nurse"]).get("/sessions/overrides/")
    assert report.status_code == 200
    assert REASON in report.content.decode() and "BP-HIGH" in report.content.decode()


def test_posting_an_override_of_a_hard_check_is_refused(esk_session, team, now, login):
    _checked_in(esk_session, team, now, systolic=190)
    response = login(team["prescriber"]).post(f"/sessions/{esk_session.pk}/step/override/", {
        "row_version": TreatmentSession.objects.get(pk=esk_session.pk).row_version,
        "check_code": "BP-CRISIS", "reason": REASON, "confirmer_username": team["nurse2"].username,
        "confirmer_password": TEST_PASSWORD})
    assert response.status_code == 409
    assert "can never be overridden" in response.content.decode()
    assert not Override.objects.exists()
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.CHECKED_IN


def test_an_override_covers_only_the_reading_it_was_given_for(esk_session, team, now):
    """Overridden at 145/92; the BP then rises to 179/109 (just under crisis): dosing must not
    start on the old override, and a new override of the new reading is needed."""
    _checked_in(esk_session, team, now - dt.timedelta(minutes=10), systolic=145)
    _override(esk_session, team, now - dt.timedelta(minutes=9))
    services.do_pass_prechecks(actor=team["nurse"], session=esk_session,
                               at=now - dt.timedelta(minutes=8))
    services.do_record_check(actor=team["nurse"], session=esk_session, code="extra",
                             vitals={**GOOD_VITALS, "systolic": Decimal(179),
                                     "diastolic": Decimal(109)},
                             at=now - dt.timedelta(minutes=2))
    with pytest.raises(GateRefused, match="179/109") as exc:
        services.do_start_dosing(actor=team["nurse"], session=esk_session, lot_number="L",
                                 observing_prescriber=team["prescriber"], at=now)
    assert [r.code for r in exc.value.results if r.blocking] == ["BP-HIGH"]
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.PRE_CHECKS_PASSED
    # The prescriber weighs the new reading: a second override, bound to 179/109.
    second = _override(esk_session, team, now - dt.timedelta(minutes=1))
    assert "179/109" in second.check_message and second.check_basis.startswith("179/109@")
    services.do_start_dosing(actor=team["nurse"], session=esk_session, lot_number="L",
                             observing_prescriber=team["prescriber"], at=now)
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.DOSING


def test_the_same_values_measured_again_need_a_new_override(esk_session, team, now):
    _checked_in(esk_session, team, now - dt.timedelta(minutes=10), systolic=150)
    _override(esk_session, team, now - dt.timedelta(minutes=9))
    services.do_record_check(actor=team["nurse"], session=esk_session, code="extra",
                             vitals={**GOOD_VITALS, "systolic": Decimal(150)},
                             at=now - dt.timedelta(minutes=1))
    with pytest.raises(GateRefused, match="BP-HIGH"):
        services.do_pass_prechecks(actor=team["nurse"], session=esk_session, at=now)


@pytest.mark.parametrize("who", ["self", "front_desk"])
def test_posting_an_override_confirmed_by_the_same_person_or_a_non_clinician_is_refused(
        esk_session, team, now, login, make_staff, who):
    _checked_in(esk_session, team, now)
    confirmer = team["prescriber"] if who == "self" else make_staff("front_desk")
    esk_session.refresh_from_db()
    response = login(team["prescriber"]).post(f"/sessions/{esk_session.pk}/step/override/", {
        "row_version": esk_session.row_version, "check_code": "BP-HIGH", "reason": REASON,
        "confirmer_username": confirmer.username, "confirmer_password": TEST_PASSWORD})
    assert response.status_code == 409
    text = response.content.decode()
    assert ("different person" in text) if who == "self" else ("may not confirm" in text)
    assert not Override.objects.exists()
