"""Every pre-check is a hard stop (BP-HIGH alone is soft): none can be bypassed by a direct POST."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from ketasafe.clinic.models import ClinicSettings
from ketasafe.lib.timeutil import clinic_today
from ketasafe.protocols import services as protocol_services
from ketasafe.screening import services as screening_services
from ketasafe.sessions import checks, services
from ketasafe.sessions.exceptions import GateRefused
from ketasafe.sessions.models import TreatmentSession
from ketasafe.sessions.state import Status

from . import helpers
from .helpers import GOOD_VITALS, YES_CHECKLIST, walk

pytestmark = pytest.mark.django_db


def _ready(session, team, now, *, checklist=None, vitals=None, vitals_at=None):
    """Checked in with the checklist and vitals given; pre-checks not yet run."""
    services.do_check_in(actor=team["nurse"], session=session, at=now - dt.timedelta(minutes=20))
    services.do_update_checklist(actor=team["nurse"], session=session,
                                 values=checklist if checklist is not None else YES_CHECKLIST,
                                 prescriber_on_site=team["prescriber"], at=now)
    if vitals is not False:
        observed = vitals_at or now - dt.timedelta(minutes=5)
        services.do_record_check(actor=team["nurse"], session=session, code="pre-dose",
                                 observed_at=observed, vitals=vitals or GOOD_VITALS, moaas=5, at=now)
    return session


def _blocking(session, now):
    return {r.code: r for r in checks.precheck_results(session, now) if r.blocking}


def _refused(session, team, now, code):
    with pytest.raises(GateRefused) as exc:
        services.do_pass_prechecks(actor=team["nurse"], session=session, at=now)
    blocking = [r for r in exc.value.results if r.blocking]
    assert code in {r.code for r in blocking}, blocking
    assert TreatmentSession.objects.get(pk=session.pk).status == Status.CHECKED_IN
    return {r.code: r for r in blocking}


def test_all_pass_when_everything_is_in_order(esk_session, team, now):
    _ready(esk_session, team, now)
    assert _blocking(esk_session, now) == {}
    services.do_pass_prechecks(actor=team["nurse"], session=esk_session, at=now)
    esk_session.refresh_from_db()
    assert esk_session.status == Status.PRE_CHECKS_PASSED
    assert {r["code"] for r in esk_session.precheck_results} >= {
        "TREATMENT-ALLOWED", "ORDER-SIGNED", "COURSE", "DOSE", "PRESCRIBER-ON-SITE",
        "VITALS-RECENT", "BP-CRISIS", "BP-HIGH", "FASTING", "RIDE-HOME", "REMS-MEDICINES"}


def test_treatment_not_allowed_today_is_a_hard_stop(esk_session, team, now, gate):
    _ready(esk_session, team, now)
    gate.deny("consent_withdrawn", "consent was withdrawn")
    found = _refused(esk_session, team, now, "TREATMENT-ALLOWED")
    assert "consent was withdrawn" in found["TREATMENT-ALLOWED"].message
    assert found["TREATMENT-ALLOWED"].hard
    assert gate.calls[-1][1] == "esketamine-trd"


def test_prescriber_on_site_must_be_named(esk_order, team, now):
    session = helpers.schedule(esk_order, team["nurse"], now)
    services.do_check_in(actor=team["nurse"], session=session, at=now)
    services.do_update_checklist(actor=team["nurse"], session=session, values=YES_CHECKLIST, at=now)
    services.do_record_check(actor=team["nurse"], session=session, code="pre-dose",
                             vitals=GOOD_VITALS, at=now)
    _refused(session, team, now, "PRESCRIBER-ON-SITE")


def test_vitals_older_than_the_clinic_limit_are_a_hard_stop(esk_session, team, now):
    _ready(esk_session, team, now, vitals_at=now - dt.timedelta(minutes=31))
    found = _refused(esk_session, team, now, "VITALS-RECENT")
    assert "30 min" in found["VITALS-RECENT"].message
    settings = ClinicSettings.current()
    settings.predose_vitals_max_age_min = 45
    settings.save()
    assert "VITALS-RECENT" not in _blocking(esk_session, now)


def test_missing_vitals_are_a_hard_stop(esk_session, team, now):
    _ready(esk_session, team, now, vitals=False)
    _refused(esk_session, team, now, "VITALS-RECENT")


def test_bp_crisis_is_hard_and_bp_high_is_soft(esk_session, team, now):
    _ready(esk_session, team, now, vitals={**GOOD_VITALS, "systolic": Decimal(185)})
    found = _refused(esk_session, team, now, "BP-CRISIS")
    assert found["BP-CRISIS"].hard and "cannot be overridden" in found["BP-CRISIS"].message
    services.do_record_check(actor=team["nurse"], session=esk_session, code="pre-dose-2",
                             vitals={**GOOD_VITALS, "systolic": Decimal(150)}, at=now)
    found = _refused(esk_session, team, now, "BP-HIGH")
    assert not found["BP-HIGH"].hard and found["BP-HIGH"].overridable


def test_bp_high_threshold_is_150_from_age_65(esk_order, team, now, make_patient, gate):
    today = clinic_today()
    turned_65 = today.replace(year=today.year - 65, day=min(today.day, 28))
    older = make_patient(birth_date=turned_65)
    order = helpers.sign_order(older, team["prescriber"], "esketamine-trd", at=now - dt.timedelta(days=1))
    session = helpers.schedule(order, team["nurse"], now, prescriber=team["prescriber"])
    _ready(session, team, now, vitals={**GOOD_VITALS, "systolic": Decimal(148)})
    results = {r.code: r for r in checks.precheck_results(session, now)}
    assert results["BP-HIGH"].passed and "150/90" in results["BP-HIGH"].message
    services.do_record_check(actor=team["nurse"], session=session, code="pre-dose-2",
                             vitals={**GOOD_VITALS, "systolic": Decimal(151)}, at=now)
    found = _refused(session, team, now, "BP-HIGH")
    assert "151/78" in found["BP-HIGH"].message and "(age 65)" in found["BP-HIGH"].message


def test_bp_is_judged_on_a_reading_taken_as_a_pair(esk_session, team, now):
    """A newer lone systolic or diastolic is never paired with an older value, and it blocks
    until a full BP is taken."""
    _ready(esk_session, team, now, vitals={**GOOD_VITALS, "systolic": Decimal(200),
                                           "diastolic": Decimal(100)},
           vitals_at=now - dt.timedelta(minutes=10))
    services.do_record_check(actor=team["nurse"], session=esk_session, code="extra",
                             vitals={"diastolic": Decimal(85)}, observed_at=now - dt.timedelta(minutes=5),
                             at=now)
    services.do_record_check(actor=team["nurse"], session=esk_session, code="extra2",
                             vitals={"systolic": Decimal(120)}, observed_at=now - dt.timedelta(minutes=3),
                             at=now)
    found = _refused(esk_session, team, now, "BP-PAIRED")
    assert "Systolic 120" in found["BP-PAIRED"].message
    # the pair that was measured together still stands (200/100 is a crisis) ...
    assert "200/100" in found["BP-CRISIS"].message
    assert not any("120/85" in r.message for r in checks.precheck_results(esk_session, now))
    # ... until a full reading is taken.
    services.do_record_check(actor=team["nurse"], session=esk_session, code="extra3",
                             vitals={"systolic": Decimal(124), "diastolic": Decimal(80)},
                             observed_at=now - dt.timedelta(minutes=1), at=now)
    assert _blocking(esk_session, now) == {}


@pytest.mark.parametrize("field,code", [
    ("fasting_confirmed", "FASTING"),
    ("ride_home_arranged", "RIDE-HOME"),
    ("benzodiazepines", "REMS-MEDICINES"),
    ("opioids", "REMS-MEDICINES"),
])
def test_unconfirmed_checklist_items_are_hard_stops(esk_session, team, now, field, code):
    _ready(esk_session, team, now, checklist={**YES_CHECKLIST, field: None})
    assert _refused(esk_session, team, now, code)[code].hard


def test_fasting_is_only_checked_for_esketamine(iv_session, team, now):
    _ready(iv_session, team, now, checklist={**YES_CHECKLIST, "fasting_confirmed": None})
    assert _blocking(iv_session, now) == {}


def test_pregnancy_test_where_the_clinic_requires_one(team, now, make_patient, gate):
    woman = make_patient(sex="female", birth_date=dt.date(1995, 3, 3), pregnancy_status="not_pregnant")
    order = helpers.sign_order(woman, team["prescriber"], "esketamine-trd", at=now - dt.timedelta(days=1))
    session = helpers.schedule(order, team["nurse"], now, prescriber=team["prescriber"])
    _ready(session, team, now)
    found = _refused(session, team, now, "PREGNANCY-TEST")
    assert "requires a pregnancy test" in found["PREGNANCY-TEST"].message
    services.do_update_checklist(actor=team["nurse"], session=session,
                                 values={"pregnancy_test": "positive"}, at=now)
    assert "POSITIVE" in _refused(session, team, now, "PREGNANCY-TEST")["PREGNANCY-TEST"].message
    services.do_update_checklist(actor=team["nurse"], session=session,
                                 values={"pregnancy_test": "negative"}, at=now)
    assert _blocking(session, now) == {}
    settings = ClinicSettings.current()
    settings.require_pregnancy_test = False
    settings.save()
    services.do_update_checklist(actor=team["nurse"], session=session,
                                 values={"pregnancy_test": ""}, at=now)
    assert "PREGNANCY-TEST" not in _blocking(session, now)


def test_pregnancy_test_age_comes_from_the_active_rule_set(team, now, make_patient, make_staff, gate):
    """A clinic that raised the pregnancy age in its rule set (default-v1: under 55) gets the
    test asked of a woman of 58, as its screening would."""
    on = now.date()
    woman = make_patient(sex="female", birth_date=dt.date(on.year - 58, 1, 1),  # 58 on any day of the year
                         pregnancy_status="not_pregnant")
    order = helpers.sign_order(woman, team["prescriber"], "esketamine-trd", at=now - dt.timedelta(days=1))
    session = helpers.schedule(order, team["nurse"], now, prescriber=team["prescriber"])
    _ready(session, team, now)
    assert "PREGNANCY-TEST" not in _blocking(session, now)  # default-v1: 58 is not under 55
    admin = make_staff("clinic_admin")
    raised = screening_services.do_create_ruleset_version(
        actor=admin, base=screening_services.active_ruleset(), version="clinic-pregnancy-60",
        thresholds={"pregnancy_unknown_max_age": 60})
    screening_services.do_activate_ruleset(actor=admin, ruleset=raised)
    assert "requires a pregnancy test" in _blocking(session, now)["PREGNANCY-TEST"].message


def test_course_min_interval_is_a_hard_stop(esk_order, team, now):
    first = helpers.schedule(esk_order, team["nurse"], now - dt.timedelta(hours=30),
                             prescriber=team["prescriber"])
    walk(first, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(hours=30))
    services.do_end(actor=team["nurse"], session=first, kind="abort", reason="test",
                    at=now - dt.timedelta(hours=29))
    second = helpers.schedule(esk_order, team["nurse"], now, chair_n=2, prescriber=team["prescriber"])
    _ready(second, team, now)
    found = _refused(second, team, now, "COURSE-MIN-INTERVAL")
    assert "48 h" in found["COURSE-MIN-INTERVAL"].message


def test_order_covers_the_session_number(gate, team, patient, now):
    patient.measurements.create(measured_on=(now - dt.timedelta(days=10)).date(),
                                weight_kg=Decimal("80.0"), recorded_by=team["nurse"])
    order = helpers.sign_order(patient, team["prescriber"], "iv-ketamine-depression", sessions=1,
                               at=now, course_start=(now - dt.timedelta(days=5)).date())
    first = helpers.schedule(order, team["nurse"], now - dt.timedelta(days=3), prescriber=team["prescriber"])
    walk(first, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(days=3))
    # A second session cannot even be scheduled beyond the order ...
    with pytest.raises(Exception, match="covers 1 sessions"):
        helpers.schedule(order, team["nurse"], now)
    # ... and one scheduled before the count was used up is refused at the pre-check.
    TreatmentSession.objects.filter(pk=first.pk).update(status=Status.CANCELLED.value)
    second = helpers.schedule(order, team["nurse"], now, chair_n=2, prescriber=team["prescriber"])
    TreatmentSession.objects.filter(pk=first.pk).update(status=Status.ABORTED.value)
    _ready(second, team, now)
    _refused(second, team, now, "COURSE-BEYOND-ORDERED")


def test_cancelled_order_is_a_hard_stop(esk_session, team, now):
    _ready(esk_session, team, now)
    from ketasafe.conftest import TEST_PASSWORD

    protocol_services.do_cancel_order(actor=team["prescriber"], order=esk_session.order,
                                      reason="patient moved away", password=TEST_PASSWORD)
    _refused(esk_session, team, now, "ORDER-SIGNED")


def test_iv_without_a_dated_weight_cannot_be_dosed(iv_session, team, now):
    iv_session.patient.measurements.all().delete()
    _ready(iv_session, team, now)
    found = _refused(iv_session, team, now, "DOSE")
    assert "--weight-kg is required" in found["DOSE"].message


def test_post_prechecks_with_failures_is_refused_through_the_page(esk_session, team, now, login):
    _ready(esk_session, team, now, checklist={**YES_CHECKLIST, "ride_home_arranged": False})
    esk_session.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{esk_session.pk}/step/prechecks/",
                                         {"row_version": esk_session.row_version})
    assert response.status_code == 409
    assert "RIDE-HOME" in response.content.decode()
    assert TreatmentSession.objects.get(pk=esk_session.pk).status == Status.CHECKED_IN


def test_post_prechecks_within_the_course_minimum_interval_is_refused(esk_order, team, now, login):
    first = helpers.schedule(esk_order, team["nurse"], now - dt.timedelta(hours=30),
                             prescriber=team["prescriber"])
    walk(first, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(hours=30))
    services.do_end(actor=team["nurse"], session=first, kind="abort", reason="test",
                    at=now - dt.timedelta(hours=29))
    second = helpers.schedule(esk_order, team["nurse"], now, chair_n=2, prescriber=team["prescriber"])
    _ready(second, team, dt.datetime.now(dt.UTC))
    second.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{second.pk}/step/prechecks/",
                                         {"row_version": second.row_version})
    assert response.status_code == 409
    assert "COURSE-MIN-INTERVAL" in response.content.decode()
    assert TreatmentSession.objects.get(pk=second.pk).status == Status.CHECKED_IN


def test_post_prechecks_beyond_the_ordered_sessions_is_refused(gate, team, patient, now, login):
    patient.measurements.create(measured_on=(now - dt.timedelta(days=10)).date(),
                                weight_kg=Decimal("80.0"), recorded_by=team["nurse"])
    order = helpers.sign_order(patient, team["prescriber"], "iv-ketamine-depression", sessions=1,
                               at=now - dt.timedelta(days=4),
                               course_start=(now - dt.timedelta(days=5)).date())
    first = helpers.schedule(order, team["nurse"], now - dt.timedelta(days=3),
                             prescriber=team["prescriber"])
    walk(first, Status.DOSING, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(days=3))
    services.do_end(actor=team["nurse"], session=first, kind="abort", reason="test",
                    at=now - dt.timedelta(days=3) + dt.timedelta(minutes=5))
    # A session that slipped past the count (scheduled while the first was cancelled).
    TreatmentSession.objects.filter(pk=first.pk).update(status=Status.CANCELLED.value)
    second = helpers.schedule(order, team["nurse"], now, chair_n=2, prescriber=team["prescriber"])
    TreatmentSession.objects.filter(pk=first.pk).update(status=Status.ABORTED.value)
    _ready(second, team, dt.datetime.now(dt.UTC))
    second.refresh_from_db()
    response = login(team["nurse"]).post(f"/sessions/{second.pk}/step/prechecks/",
                                         {"row_version": second.row_version})
    assert response.status_code == 409
    assert "COURSE-BEYOND-ORDERED" in response.content.decode()
    assert TreatmentSession.objects.get(pk=second.pk).status == Status.CHECKED_IN
