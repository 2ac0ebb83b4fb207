"""The chair board and its fragment (polled with X-KetaSafe-Poll, constant query count), alert
buttons, the session chart (inline SVG with thresholds), unassigned data and the admin pages."""

from __future__ import annotations

import datetime as dt
import re
import time
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ketasafe.audit.models import AuditEntry
from ketasafe.monitoring import alerts
from ketasafe.monitoring.ingest import process_message
from ketasafe.monitoring.models import Alert, AlertRuleSet, CodeMapEntry, InboundMessage, Observation

from .helpers import make_chair, make_session, oru

pytestmark = pytest.mark.django_db


def fill_chair(n: int, make_patient, *, alert: bool = False):
    chair = make_chair(f"Chair {n}", f"KETA^^CHAIR{n}")
    session = make_session(make_patient(), chair=chair)
    now = timezone.now()
    process_message(oru(f"M{n}-1", bed=chair.bed_code, at=now - dt.timedelta(minutes=2), systolic=120))
    process_message(oru(f"M{n}-2", bed=chair.bed_code, at=now, systolic=140 if not alert else 186))
    if alert:
        alerts.evaluate_session(session.pk)
    return chair, session


def test_board_shows_every_chair_with_patient_state_vitals_trend_and_polls_with_the_header(client_for, make_patient):
    chair, session = fill_chair(1, make_patient)
    make_chair("Chair 9", "KETA^^CHAIR9")
    page = client_for("nurse").get(reverse("monitoring:board"))
    html = page.content.decode()
    assert page.status_code == 200
    assert "Chair 1" in html and "Chair 9" in html and session.patient.mrn in html
    assert "140/78" in html and "↑" in html and "dosing" in html
    assert 'hx-headers=\'{"X-KetaSafe-Poll": "1"}\'' in html
    assert 'hx-trigger="every 2s"' in html
    assert reverse("monitoring:board_fragment") in html


def test_board_needs_the_view_board_capability(client_for):
    assert client_for("front_desk").get(reverse("monitoring:board")).status_code == 403


def test_polling_the_fragment_is_not_user_activity(client_for, make_patient):
    client = client_for("nurse")
    client.get(reverse("monitoring:board"))
    session = client.session
    earlier = time.time() - 60
    session["last_activity"] = earlier
    session.save()
    response = client.get(reverse("monitoring:board_fragment"), HTTP_X_KETASAFE_POLL="1", HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert client.session["last_activity"] == earlier  # the poll did not count as activity
    client.get(reverse("monitoring:board_fragment"))
    assert client.session["last_activity"] > earlier  # a real request does


def test_fragment_queries_do_not_grow_with_the_number_of_chairs(client_for, make_patient):
    client = client_for("nurse")
    fill_chair(1, make_patient, alert=True)
    url = reverse("monitoring:board_fragment")
    client.get(url)
    with CaptureQueriesContext(connection) as one:
        client.get(url, HTTP_X_KETASAFE_POLL="1")
    for n in range(2, 7):
        fill_chair(n, make_patient, alert=True)
    with CaptureQueriesContext(connection) as six:
        response = client.get(url, HTTP_X_KETASAFE_POLL="1")
    assert response.content.decode().count('class="alert alert-raised') == 6
    assert len(six) == len(one)


def test_fragment_query_count_is_fixed(client_for, make_patient, django_assert_num_queries):
    client = client_for("nurse")
    for n in range(1, 4):
        fill_chair(n, make_patient, alert=True)
    url = reverse("monitoring:board_fragment")
    client.get(url)
    # Session, user, its role-group permission lookup (view_board), then chairs, sessions in progress,
    # the last two values of each vital (one window query), the checks already recorded (for
    # each chair's next scheduled check), open alerts with their people.
    with django_assert_num_queries(8):
        client.get(url, HTTP_X_KETASAFE_POLL="1")


def test_open_alert_is_red_with_acknowledge_then_resolve_buttons(client_for, make_patient):
    _chair, session = fill_chair(1, make_patient, alert=True)
    alert = Alert.objects.get(session=session)
    client = client_for("nurse")
    html = client.get(reverse("monitoring:board_fragment")).content.decode()
    assert "alert-raised" in html and reverse("monitoring:alert_ack", args=[alert.pk]) in html
    response = client.post(reverse("monitoring:alert_ack", args=[alert.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "alert-acknowledged" in response.content.decode()
    alert.refresh_from_db()
    assert alert.acknowledged_by == client.user
    response = client.post(reverse("monitoring:alert_resolve", args=[alert.pk]))
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_escalated_alert_is_shown_in_a_distinct_style(client_for, make_patient):
    _chair, session = fill_chair(1, make_patient, alert=True)
    alert = Alert.objects.get(session=session)
    alerts.run_watch(alert.raised_at + dt.timedelta(minutes=3))
    html = client_for("nurse").get(reverse("monitoring:board_fragment")).content.decode()
    assert "alert-escalated" in html and "escalated" in html and "chair has-alert escalated" in html


def test_session_chart_is_inline_svg_with_threshold_lines_and_no_script(client_for, make_patient):
    _chair, session = fill_chair(1, make_patient)
    AlertRuleSet.objects.create(protocol_version=None, systolic_high=170, diastolic_high=105, spo2_low=91,
                                hr_high=120, hr_low=45, rr_low=8, rise_systolic=40, rise_diastolic=25,
                                stale_after_s=180)
    url = reverse("monitoring:session_chart", args=[session.pk])
    html = client_for("nurse").get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<svg" in html and "<script" not in html
    assert html.count("<polyline") >= 4
    assert "SBP 170" in html and "&lt; 91" in html  # the clinic's thresholds are drawn
    assert re.search(r'class="rule rule-limit"', html)
    page = client_for("prescriber").get(url)
    assert page.status_code == 200 and "<h1>" in page.content.decode()


def test_unassigned_data_is_offered_and_a_nurse_assigns_it_to_a_session(client_for, make_patient):
    process_message(oru("LOST-1", bed="NO^^SUCH"))
    session = make_session(make_patient(), chair=make_chair())
    client = client_for("nurse")
    message = InboundMessage.objects.get()
    listing = client.get(reverse("monitoring:unassigned")).content.decode()
    assert "NO^^SUCH" in listing and reverse("monitoring:assign", args=[message.pk]) in listing
    response = client.post(reverse("monitoring:assign", args=[message.pk]), {"session": session.pk})
    assert response.status_code == 302
    assert set(Observation.objects.values_list("session_id", flat=True)) == {session.pk}
    assert "Nothing unassigned" in client.get(reverse("monitoring:unassigned")).content.decode()


def test_code_map_page_is_for_the_clinic_admin_and_edits_are_audited(client_for):
    admin = client_for("clinic_admin")
    page = admin.get(reverse("monitoring:code_map"))
    assert page.status_code == 200 and b"8480-6" in page.content
    assert client_for("nurse").get(reverse("monitoring:code_map")).status_code == 403
    entry = CodeMapEntry.objects.get(system="MDC", code="150021")
    data = {"source": "", "system": "MDC", "code": "150021", "loinc": "8480-6", "display": "Systolic",
            "ucum_unit": "mm[Hg]", "kind": "systolic", "extra_loinc": "", "plausible_low": "0",
            "plausible_high": "400", "reference": "edited", "active": "on"}
    response = admin.post(reverse("monitoring:code_map_edit", args=[entry.pk]), data)
    assert response.status_code == 302
    entry.refresh_from_db()
    assert entry.display == "Systolic" and entry.updated_by == admin.user


def test_alert_rules_page_creates_clinic_rules(client_for):
    admin = client_for("clinic_admin")
    assert admin.get(reverse("monitoring:alert_rules")).status_code == 200
    form = admin.get(reverse("monitoring:alert_rules_new"))
    assert form.status_code == 200 and b"180" in form.content
    data = {"protocol_version": "", "systolic_high": "175", "diastolic_high": "110", "spo2_low": "92",
            "hr_high": "110", "hr_low": "50", "rr_low": "8", "rise_systolic": "40", "rise_diastolic": "25",
            "stale_after_s": "180"}
    assert admin.post(reverse("monitoring:alert_rules_new"), data).status_code == 302
    assert AlertRuleSet.objects.get(protocol_version=None).systolic_high == Decimal(175)
    assert client_for("nurse").get(reverse("monitoring:alert_rules")).status_code == 403


def test_each_chair_shows_its_next_scheduled_check_and_flags_it_overdue(client_for, make_patient):
    # Esketamine (facts 1.5): a BP check about 40 minutes after dosing. At 20 minutes it is
    # upcoming; at 50 minutes, not recorded, it is overdue.
    soon = make_session(make_patient(), chair=make_chair("Chair 1", "KETA^^CHAIR1"))
    late = make_session(make_patient(), chair=make_chair("Chair 2", "KETA^^CHAIR2"),
                        dosing_started_at=timezone.now() - dt.timedelta(minutes=50))
    html = client_for("nurse").get(reverse("monitoring:board_fragment")).content.decode()
    chair1, chair2 = html.split('aria-label="Chair 2"')
    assert "Next check:" in chair1 and "overdue" not in chair1
    assert "Next check:" in chair2 and "overdue" in chair2
    from ketasafe.lib.timeutil import clinic_tz

    expected = (late.dosing_started_at + dt.timedelta(minutes=40)).astimezone(clinic_tz()).strftime("%H:%M")
    assert f"at {expected}" in chair2
    assert soon.pk != late.pk


def test_unassigned_page_lists_data_found_by_mrn_without_a_session_and_patient_mismatches(client_for, make_patient):
    make_patient(mrn="MRN-NOSESSION")
    process_message(oru("U1", bed="NO^^SUCH", mrn="MRN-NOSESSION"))
    make_session(make_patient(mrn="IN-CHAIR"), chair=make_chair())
    make_patient(mrn="OTHER")
    process_message(oru("U2", mrn="OTHER"))
    client = client_for("nurse")
    listing = client.get(reverse("monitoring:unassigned")).content.decode()
    for control_id in ("U1", "U2"):
        message = InboundMessage.objects.get(control_id=control_id)
        assert reverse("monitoring:assign", args=[message.pk]) in listing
    assert "patient mismatch" in listing and "no_session_in_progress" in listing
    board = client.get(reverse("monitoring:board")).content.decode()
    assert "2 monitor messages not on a session" in board


def test_data_named_for_a_patient_can_only_be_assigned_to_that_patients_session(client_for, make_patient):
    named = make_patient(mrn="NAMED")
    process_message(oru("N1", bed="NO^^SUCH", mrn="NAMED"))
    other_session = make_session(make_patient(), chair=make_chair())
    own_session = make_session(named, chair=make_chair("Chair 2", "KETA^^CHAIR2"))
    client = client_for("nurse")
    message = InboundMessage.objects.get()
    response = client.post(reverse("monitoring:assign", args=[message.pk]), {"session": other_session.pk})
    assert response.status_code == 200  # not a choice
    assert not Observation.objects.filter(session=other_session).exists()
    response = client.post(reverse("monitoring:assign", args=[message.pk]), {"session": own_session.pk})
    assert response.status_code == 302
    assert set(Observation.objects.values_list("session_id", flat=True)) == {own_session.pk}


def test_full_page_gets_of_board_unassigned_and_assign_write_a_view_audit_entry(client_for, make_patient):
    from ketasafe.audit.models import AuditEntry

    patient = make_patient(mrn="MRN-VIEW")
    process_message(oru("V1", bed="NO^^SUCH", mrn="MRN-VIEW"))
    message = InboundMessage.objects.get()
    client = client_for("nurse")
    for url in (reverse("monitoring:board"), reverse("monitoring:unassigned"),
                reverse("monitoring:assign", args=[message.pk])):
        before = AuditEntry.objects.filter(action="view").count()
        assert client.get(url).status_code == 200
        assert AuditEntry.objects.filter(action="view").count() == before + 1, url
    assert AuditEntry.objects.filter(action="view", patient=patient).exists()
    before = AuditEntry.objects.filter(action="view").count()
    client.get(reverse("monitoring:board_fragment"), HTTP_X_KETASAFE_POLL="1")
    assert AuditEntry.objects.filter(action="view").count() == before  # the 2-s poll is not audited


def test_alert_rules_new_with_a_non_numeric_protocol_version_is_404_not_500(client_for):
    admin = client_for("clinic_admin")
    assert admin.get(reverse("monitoring:alert_rules_new") + "?protocol_version=abc").status_code == 404


RULES = {"protocol_version": "", "systolic_high": "180", "diastolic_high": "110", "spo2_low": "92",
         "hr_high": "110", "hr_low": "50", "rr_low": "8", "rise_systolic": "40", "rise_diastolic": "25",
         "stale_after_s": "180"}


def test_a_second_clinic_wide_rule_set_is_refused_by_the_form_and_the_database(client_for):
    from django.db import IntegrityError, transaction

    admin = client_for("clinic_admin")
    assert admin.post(reverse("monitoring:alert_rules_new"), RULES).status_code == 302
    response = admin.post(reverse("monitoring:alert_rules_new"), {**RULES, "systolic_high": "170"})
    assert response.status_code == 200 and b"Clinic-wide alert rules already exist" in response.content
    assert AlertRuleSet.objects.filter(protocol_version=None).count() == 1
    existing = AlertRuleSet.objects.get()
    assert admin.post(reverse("monitoring:alert_rules_edit", args=[existing.pk]),
                      {**RULES, "systolic_high": "170"}).status_code == 302  # editing it is fine
    values = {name: getattr(existing, name) for name in AlertRuleSet.THRESHOLD_FIELDS}
    with pytest.raises(IntegrityError), transaction.atomic():
        AlertRuleSet.objects.create(protocol_version=None, **values)


@pytest.mark.parametrize(("field", "value"), [
    ("systolic_high", "9999"), ("systolic_high", "139"), ("diastolic_high", "1"), ("diastolic_high", "131"),
    ("spo2_low", "0.1"), ("spo2_low", "98"), ("hr_high", "161"), ("hr_low", "29"), ("hr_low", "61"),
    ("rr_low", "99999"), ("rr_low", "3"), ("rise_systolic", "81"), ("rise_diastolic", "9"),
    ("stale_after_s", "999999"), ("stale_after_s", "59"),
])  # fmt: skip
def test_alert_thresholds_that_switch_an_alarm_off_are_refused(field, value):
    from ketasafe.monitoring.forms import AlertRuleSetForm

    form = AlertRuleSetForm({**RULES, field: value})
    assert not form.is_valid()
    assert "sanity bounds" in " ".join(form.errors[field])


def test_alert_thresholds_at_the_bounds_are_accepted_and_the_bounds_are_in_the_help_text():
    from ketasafe.monitoring.forms import AlertRuleSetForm

    edges = {"systolic_high": "220", "diastolic_high": "80", "spo2_low": "97", "hr_high": "90", "hr_low": "30",
             "rr_low": "12", "rise_systolic": "10", "rise_diastolic": "50", "stale_after_s": "600"}
    form = AlertRuleSetForm({**RULES, **edges})
    assert form.is_valid(), form.errors
    assert "140-220" in form.fields["systolic_high"].help_text


def test_the_assign_service_itself_keeps_data_off_other_patients_and_ended_sessions(make_staff, make_patient):
    from django.core.exceptions import PermissionDenied

    from ketasafe.monitoring.services import do_assign_observations

    nurse = make_staff("nurse")
    named = make_patient(mrn="NAMED")
    process_message(oru("N1", bed="NO^^SUCH", mrn="NAMED"))
    message = InboundMessage.objects.get()
    other_session = make_session(make_patient(), chair=make_chair())
    assert do_assign_observations(actor=nurse, message=message, session=other_session) == 0
    ended = make_session(named, chair=make_chair("Chair 2", "KETA^^CHAIR2"), status="completed")
    with pytest.raises(PermissionDenied):
        do_assign_observations(actor=nurse, message=message, session=ended)
    assert not Observation.objects.exclude(session=None).exists()


def test_assigned_readings_are_judged_even_when_a_newer_normal_one_exists(make_staff, make_patient,
                                                                          django_capture_on_commit_callbacks):
    from ketasafe.monitoring.services import do_assign_observations

    nurse = make_staff("nurse")
    session = make_session(make_patient(), chair=make_chair())
    earlier = timezone.now() - dt.timedelta(minutes=3)
    process_message(oru("OLD", bed="NO^^SUCH", mrn="", systolic=230, at=earlier))
    process_message(oru("NEW", bed="KETA^^CHAIR1", systolic=120))  # on the session, normal
    message = InboundMessage.objects.get(control_id="OLD")
    with django_capture_on_commit_callbacks(execute=True):
        assert do_assign_observations(actor=nurse, message=message, session=session) == 7
    assert Alert.objects.filter(session=session, code="SBP_HIGH").exists()


def test_the_board_does_not_take_a_reading_stamped_ahead_for_the_latest(client_for, make_patient):
    session = make_session(make_patient(), chair=make_chair())
    process_message(oru("F1", bed="KETA^^CHAIR1", systolic=118, at=timezone.now() + dt.timedelta(days=1)))
    process_message(oru("F2", bed="KETA^^CHAIR1", systolic=201))
    page = client_for("nurse").get(reverse("monitoring:board")).content.decode()
    assert session.patient.mrn in page
    assert "201/" in page and "118/" not in page


def test_the_first_code_map_entry_on_a_new_database_does_not_replace_the_shipped_map(make_staff):
    from ketasafe.monitoring import codemap

    assert not CodeMapEntry.objects.exists()
    codemap.do_save_code_map_entry(actor=make_staff("clinic_admin"), values={
        "source": "", "system": "LOCAL", "code": "X1", "loinc": "8480-6", "display": "Systolic",
        "ucum_unit": "mm[Hg]", "kind": "systolic", "plausible_low": Decimal(0), "plausible_high": Decimal(400)})
    assert CodeMapEntry.objects.filter(system="MDC", code="150021").exists()
    process_message(oru("S1"))
    assert Observation.objects.get(kind="systolic").value is not None


def test_a_code_map_edit_is_audited_with_the_values_it_replaced(make_staff):
    from ketasafe.audit.models import AuditEntry
    from ketasafe.monitoring import codemap

    codemap.ensure_seeded()
    row = CodeMapEntry.objects.get(system="MDC", code="150021")
    original = row.display
    row.display = "CHANGED"  # as a bound ModelForm leaves its instance
    codemap.do_save_code_map_entry(actor=make_staff("clinic_admin"), values={"display": "CHANGED"}, instance=row)
    entry = AuditEntry.objects.filter(detail="code map entry").get()
    assert f'"before":{{"display":"{original}"}}' in entry.changes


# --- open alerts of sessions no longer in a chair ---------------------------------------------------

ELSEWHERE = "Open alerts of sessions no longer in a chair"


def _alert(session, *, code="SPO2_LOW", minutes_ago=5, **kw):
    return Alert.objects.create(session=session, chair=session.chair, patient=session.patient, code=code,
                                message=f"{code}: SpO2 88 % (below 92 %)",
                                raised_at=timezone.now() - dt.timedelta(minutes=minutes_ago), **kw)


def test_an_open_alert_of_an_aborted_session_is_listed_below_the_chairs_and_can_be_handled(client_for, make_patient):
    aborted = make_session(make_patient(mrn="GONE-1"), chair=make_chair(), status="aborted")
    alert = _alert(aborted)
    client = client_for("nurse")
    html = client.get(reverse("monitoring:board_fragment")).content.decode()
    assert ELSEWHERE in html
    chairs, elsewhere = html.split(ELSEWHERE)
    assert "GONE-1" not in chairs and "Free" in chairs  # the chair itself is free again
    assert "1 alert to acknowledge" in chairs  # the summary counts it
    assert "GONE-1" in elsewhere and "SPO2_LOW: SpO2 88 %" in elsewhere and "Session 1" in elsewhere
    assert ">aborted<" in elsewhere and "alert alert-raised" in elsewhere
    assert reverse("sessions:detail", args=[aborted.pk]) in elsewhere
    assert reverse("monitoring:alert_ack", args=[alert.pk]) in elsewhere
    response = client.post(reverse("monitoring:alert_ack", args=[alert.pk]), HTTP_HX_REQUEST="true")
    after = response.content.decode().split(ELSEWHERE)[1]
    assert "alert alert-acknowledged" in after and reverse("monitoring:alert_resolve", args=[alert.pk]) in after
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == client.user
    client.post(reverse("monitoring:alert_resolve", args=[alert.pk]))
    assert ELSEWHERE not in client.get(reverse("monitoring:board_fragment")).content.decode()


def test_an_unacknowledged_alert_of_a_cancelled_session_still_escalates_and_is_marked_so(client_for, make_patient):
    cancelled = make_session(make_patient(mrn="GONE-2"), chair=make_chair(), status="cancelled")
    alert = _alert(cancelled)
    assert [a.pk for a in alerts.escalate_due(timezone.now())] == [alert.pk]
    html = client_for("nurse").get(reverse("monitoring:board_fragment")).content.decode()
    elsewhere = html.split(ELSEWHERE)[1]
    assert "alert alert-raised alert-escalated" in elsewhere and "<b>escalated</b>" in elsewhere
    assert 'class="alerts-elsewhere escalated"' in html


def test_only_open_alerts_not_shown_on_a_chair_are_listed_apart(client_for, make_patient):
    _chair, in_chair = fill_chair(1, make_patient, alert=True)
    discharged = make_session(make_patient(mrn="DONE-1"), status="discharged")
    _alert(discharged, status="resolved", resolved_at=timezone.now())
    client = client_for("nurse")
    html = client.get(reverse("monitoring:board_fragment")).content.decode()
    assert ELSEWHERE not in html and "DONE-1" not in html
    assert html.count('class="alert alert-raised') == 1  # the chair's own, once
    # A session in progress on no active chair is off the chairs too: its alert is listed apart.
    chairless = make_session(make_patient(mrn="NO-CHAIR"), status="dosing")
    _alert(chairless, code="HR_HIGH")
    html = client.get(reverse("monitoring:board_fragment")).content.decode()
    chairs, elsewhere = html.split(ELSEWHERE)
    assert "NO-CHAIR" in elsewhere and in_chair.patient.mrn in chairs and in_chair.patient.mrn not in elsewhere


def test_alerts_of_sessions_no_longer_in_a_chair_cost_no_extra_query(client_for, make_patient,
                                                                     django_assert_num_queries):
    client = client_for("nurse")
    for n in range(1, 4):
        fill_chair(n, make_patient, alert=True)
    for status in ("aborted", "cancelled", "discharged"):
        _alert(make_session(make_patient(), status=status))
    url = reverse("monitoring:board_fragment")
    client.get(url)
    with django_assert_num_queries(8):  # as test_fragment_query_count_is_fixed
        response = client.get(url, HTTP_X_KETASAFE_POLL="1")
    html = response.content.decode()
    assert html.count('class="alert alert-raised') == 6
    assert html.split(ELSEWHERE)[1].count('class="alert alert-raised') == 3


# --- assigning unassigned data: only data taken during the session ----------------------------------

def _lost_message(control_id, at):
    process_message(oru(control_id, bed="NO^^SUCH", at=at))
    return InboundMessage.objects.get(control_id=control_id)


def test_monitor_data_from_yesterday_cannot_be_assigned_to_todays_session(make_staff, make_patient):
    from django.core.exceptions import PermissionDenied

    from ketasafe.audit.models import AuditEntry
    from ketasafe.monitoring.services import do_assign_observations

    nurse = make_staff("nurse")
    now = timezone.now().replace(microsecond=0)
    session = make_session(make_patient(), chair=make_chair())  # checked in 40 minutes ago
    message = _lost_message("YESTERDAY", now - dt.timedelta(days=1))
    with pytest.raises(PermissionDenied) as exc:
        do_assign_observations(actor=nurse, message=message, session=session, now=now)
    assert str(exc.value).startswith("7 of the 7 readings of this message were taken ")
    assert "outside this session" in str(exc.value) and "nothing was assigned" in str(exc.value)
    assert not Observation.objects.exclude(session=None).exists()
    assert not AuditEntry.objects.filter(detail="unassigned monitor data assigned to a session").exists()


@pytest.mark.parametrize(("after_check_in", "ahead_of_now", "allowed"), [
    (-dt.timedelta(minutes=10), None, True),
    (-dt.timedelta(minutes=10, seconds=1), None, False),
    (None, dt.timedelta(minutes=5), True),  # alerts.FUTURE_SKEW
    (None, dt.timedelta(minutes=5, seconds=1), False),
])  # fmt: skip
def test_assignable_data_runs_from_10_minutes_before_check_in_to_the_clock_skew_ahead(
        after_check_in, ahead_of_now, allowed, make_staff, make_patient):
    from django.core.exceptions import PermissionDenied

    from ketasafe.monitoring.services import ASSIGN_BEFORE_CHECK_IN, do_assign_observations
    from ketasafe.sessions.models import TreatmentSession

    assert ASSIGN_BEFORE_CHECK_IN == dt.timedelta(minutes=10)
    nurse = make_staff("nurse")
    now = timezone.now().replace(microsecond=0)
    session = make_session(make_patient(), chair=make_chair())
    checked_in = now - dt.timedelta(minutes=40)
    TreatmentSession.objects.filter(pk=session.pk).update(checked_in_at=checked_in)
    at = checked_in + after_check_in if after_check_in is not None else now + ahead_of_now
    message = _lost_message("EDGE", at)
    if allowed:
        assert do_assign_observations(actor=nurse, message=message, session=session, now=now) == 7
    else:
        with pytest.raises(PermissionDenied, match="outside this session"):
            do_assign_observations(actor=nurse, message=message, session=session, now=now)
        assert not Observation.objects.exclude(session=None).exists()


def test_one_old_reading_in_a_message_keeps_the_whole_message_off_the_session(make_staff, make_patient):
    from django.core.exceptions import PermissionDenied

    from ketasafe.monitoring.services import do_assign_observations

    nurse = make_staff("nurse")
    now = timezone.now().replace(microsecond=0)
    session = make_session(make_patient(), chair=make_chair())
    message = _lost_message("MIXED", now - dt.timedelta(minutes=1))
    one = Observation.objects.filter(message=message).order_by("id").last()
    Observation.objects.filter(pk=one.pk).update(observed_at=now - dt.timedelta(hours=5))
    with pytest.raises(PermissionDenied, match="1 of the 7 readings"):
        do_assign_observations(actor=nurse, message=message, session=session, now=now)
    assert not Observation.objects.exclude(session=None).exists()


def test_assigning_old_data_on_the_page_shows_why_and_assigns_nothing(client_for, make_patient):
    session = make_session(make_patient(), chair=make_chair())
    message = _lost_message("OLD-PAGE", timezone.now() - dt.timedelta(days=1))
    response = client_for("nurse").post(reverse("monitoring:assign", args=[message.pk]), {"session": session.pk})
    html = response.content.decode()
    assert response.status_code == 403
    assert "<h1>Assign monitor data</h1>" in html  # the form again, not an error page
    assert '<ul class="errorlist" role="alert"><li>7 of the 7 readings' in html and "nothing was assigned" in html
    assert not Observation.objects.exclude(session=None).exists()
    refused = AuditEntry.objects.get(action="refused", object_type="monitoring.InboundMessage")
    assert refused.object_id == str(message.pk) and refused.patient_id == session.patient_id
    assert "nothing was assigned" in refused.detail


# --- alert rules: bounds and the one clinic-wide set, whoever saves --------------------------------

THRESHOLDS = {name: Decimal(value) for name, value in RULES.items() if name != "protocol_version"}


def test_the_service_refuses_thresholds_outside_the_sanity_bounds_and_saves_nothing(make_staff):
    from django.core.exceptions import ValidationError

    from ketasafe.audit.models import AuditEntry
    from ketasafe.monitoring.services import do_save_alert_rules

    admin = make_staff("clinic_admin")
    with pytest.raises(ValidationError) as exc:
        do_save_alert_rules(actor=admin, instance=AlertRuleSet(**{**THRESHOLDS, "systolic_high": Decimal(9999)}))
    assert exc.value.message_dict == {"systolic_high": ["Must be between 140 and 220 mmHg (sanity bounds)."]}
    assert not AlertRuleSet.objects.exists()
    rules = do_save_alert_rules(actor=admin, instance=AlertRuleSet(**THRESHOLDS))
    rules.spo2_low = Decimal("0.1")  # would never alarm
    with pytest.raises(ValidationError, match="sanity bounds"):
        do_save_alert_rules(actor=admin, instance=rules)
    assert AlertRuleSet.objects.get().spo2_low == Decimal(92)
    assert AuditEntry.objects.filter(detail="alert rules").count() == 1  # the valid save only


def test_the_model_itself_refuses_thresholds_outside_the_sanity_bounds():
    from django.core.exceptions import ValidationError

    with pytest.raises(ValidationError) as exc:
        AlertRuleSet(**{**THRESHOLDS, "hr_low": Decimal(61), "stale_after_s": Decimal(999999)}).full_clean()
    assert set(exc.value.message_dict) == {"hr_low", "stale_after_s"}
    AlertRuleSet(**THRESHOLDS).full_clean()


def test_a_clinic_wide_set_saved_by_another_admin_after_the_form_was_checked_is_a_form_error(client_for,
                                                                                             monkeypatch):
    from ketasafe.monitoring import services, views
    from ketasafe.monitoring.models import CLINIC_WIDE_EXISTS

    real = services.do_save_alert_rules

    def other_admin_saves_first(**kwargs):
        AlertRuleSet.objects.create(**{**THRESHOLDS, "systolic_high": Decimal(170)})
        return real(**kwargs)

    monkeypatch.setattr(views, "do_save_alert_rules", other_admin_saves_first)
    response = client_for("clinic_admin").post(reverse("monitoring:alert_rules_new"), RULES)
    assert response.status_code == 409
    assert CLINIC_WIDE_EXISTS in response.content.decode()
    assert list(AlertRuleSet.objects.values_list("systolic_high", flat=True)) == [Decimal(170)]


@pytest.mark.parametrize("for_protocol", [False, True])
def test_a_rule_set_stored_between_validation_and_insert_is_a_validation_error_not_a_500(for_protocol, make_staff,
                                                                                        monkeypatch):
    """Both saves passed full_clean before either inserted: the database constraint decides."""
    from django.core.exceptions import ValidationError

    from ketasafe.audit.models import AuditEntry
    from ketasafe.monitoring.models import CLINIC_WIDE_EXISTS, PROTOCOL_RULES_EXIST
    from ketasafe.monitoring.services import do_save_alert_rules
    from ketasafe.protocols.models import ProtocolVersion

    version = ProtocolVersion.objects.get_or_create(protocol_id="esketamine-trd", label="ketasafe-v1",
                                                    defaults={"changes": {}})[0] if for_protocol else None
    real_full_clean = AlertRuleSet.full_clean

    def full_clean_then_the_other_save_lands(self, *args, **kwargs):
        real_full_clean(self, *args, **kwargs)
        AlertRuleSet.objects.create(protocol_version=version, **THRESHOLDS)

    monkeypatch.setattr(AlertRuleSet, "full_clean", full_clean_then_the_other_save_lands)
    mine = AlertRuleSet(protocol_version=version, **{**THRESHOLDS, "systolic_high": Decimal(170)})
    with pytest.raises(ValidationError) as exc:
        do_save_alert_rules(actor=make_staff("clinic_admin"), instance=mine)
    assert exc.value.message_dict == {"protocol_version": [PROTOCOL_RULES_EXIST if for_protocol
                                                           else CLINIC_WIDE_EXISTS]}
    assert mine.pk is None
    assert not AuditEntry.objects.filter(detail="alert rules").exists()
