"""Alerts: raised on commit from the same transaction as the observation, one open per rule,
acknowledged, resolved, escalated after 2 minutes, stale feeds; all audited."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from ketasafe.audit.models import AuditEntry
from ketasafe.monitoring import alerts
from ketasafe.monitoring.alerts import AlertActionRefused, do_acknowledge, do_resolve, run_watch
from ketasafe.monitoring.ingest import process_message
from ketasafe.monitoring.models import STALE_FEED, Alert, AlertRuleSet, Observation
from ketasafe.monitoring.services import do_record_manual_vitals

from .helpers import make_chair, make_session, oru

pytestmark = pytest.mark.django_db


@pytest.fixture
def session(make_patient):
    return make_session(make_patient(), chair=make_chair())


def ingest(raw: bytes, capture) -> bytes:
    with capture(execute=True) as callbacks:
        ack = process_message(raw)
    assert callbacks, "alert evaluation must be registered with transaction.on_commit"
    return ack


def test_sbp_185_raises_an_alert_only_once_the_observation_is_committed(
        session, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        process_message(oru("H1", systolic=185))
    assert not Alert.objects.exists()  # nothing before the commit
    for callback in callbacks:
        callback()
    alert = Alert.objects.get()
    assert (alert.code, alert.value, alert.threshold) == ("SBP_HIGH", Decimal(185), Decimal(180))
    assert alert.status == "raised"
    assert alert.session == session and alert.observation.message.control_id == "H1"
    assert AuditEntry.objects.filter(object_type="monitoring.Alert", object_id=str(alert.pk), action="create").exists()


def test_a_persisting_high_value_does_not_raise_a_second_open_alert(session, django_capture_on_commit_callbacks):
    ingest(oru("H1", systolic=185), django_capture_on_commit_callbacks)
    ingest(oru("H2", systolic=190), django_capture_on_commit_callbacks)
    assert Alert.objects.filter(code="SBP_HIGH").count() == 1


def test_a_rise_of_40_over_the_pre_dose_baseline_raises_an_alert(session, django_capture_on_commit_callbacks):
    before = session.dosing_started_at - dt.timedelta(minutes=5)
    ingest(oru("P1", systolic=130, diastolic=80, at=before), django_capture_on_commit_callbacks)
    assert not Alert.objects.exists()
    ingest(oru("P2", systolic=170, diastolic=85), django_capture_on_commit_callbacks)
    alert = Alert.objects.get()
    assert (alert.code, alert.value, alert.baseline) == ("SBP_RISE", Decimal(40), Decimal(130))


def test_no_rise_alert_below_40(session, django_capture_on_commit_callbacks):
    before = session.dosing_started_at - dt.timedelta(minutes=5)
    ingest(oru("P1", systolic=130, at=before), django_capture_on_commit_callbacks)
    ingest(oru("P2", systolic=169), django_capture_on_commit_callbacks)
    assert not Alert.objects.exists()


def test_clinic_rules_for_the_protocol_version_replace_the_defaults(session, django_capture_on_commit_callbacks):
    defaults = {name: Decimal(v) for name, v in zip(AlertRuleSet.THRESHOLD_FIELDS,
                                                     (180, 110, 92, 110, 50, 8, 40, 25, 180), strict=True)}
    AlertRuleSet.objects.create(protocol_version=session.order.protocol_version, **{**defaults, "systolic_high": 160})
    AlertRuleSet.objects.create(protocol_version=None, **{**defaults, "systolic_high": 200})
    ingest(oru("R1", systolic=165), django_capture_on_commit_callbacks)
    assert Alert.objects.get().threshold == 160


def test_desaturation_raises_spo2_low(session, django_capture_on_commit_callbacks):
    ingest(oru("D1", spo2=88), django_capture_on_commit_callbacks)
    assert Alert.objects.get().code == "SPO2_LOW"


def test_unassigned_data_raises_no_alert(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        process_message(oru("U1", bed="NOWHERE", systolic=200))
    assert not Alert.objects.exists()


def test_manual_vitals_are_judged_after_commit(session, make_staff, django_capture_on_commit_callbacks):
    nurse = make_staff("nurse")
    with django_capture_on_commit_callbacks(execute=True):
        do_record_manual_vitals(actor=nurse, session=session, values={"systolic": 186, "diastolic": 90},
                                observed_at=timezone.now())
    assert Alert.objects.get().code == "SBP_HIGH"


def raised_alert(session) -> Alert:
    obs = Observation.objects.create(session=session, patient=session.patient, kind="systolic", value=190,
                                     observed_at=timezone.now(), source="monitor")
    return alerts._raise(session, alerts.evaluate_vitals({"systolic": Decimal(190)})[0], obs, timezone.now())


def test_acknowledge_records_who_and_when_then_resolve(session, make_staff):
    nurse = make_staff("nurse")
    alert = raised_alert(session)
    do_acknowledge(actor=nurse, alert=alert)
    alert.refresh_from_db()
    assert alert.status == "acknowledged" and alert.acknowledged_by == nurse and alert.acknowledged_at
    with pytest.raises(AlertActionRefused):
        do_acknowledge(actor=make_staff("nurse"), alert=alert)  # a second click changes nothing
    do_resolve(actor=nurse, alert=alert, note="BP rechecked 150/90")
    alert.refresh_from_db()
    assert alert.status == "resolved" and alert.resolved_by == nurse and alert.resolution == "BP rechecked 150/90"
    details = list(AuditEntry.objects.filter(object_type="monitoring.Alert", object_id=str(alert.pk))
                   .values_list("detail", flat=True))
    assert any("acknowledged" in d for d in details) and any("resolved" in d for d in details)


def test_an_alert_must_be_acknowledged_before_it_is_resolved(session, make_staff):
    alert = raised_alert(session)
    with pytest.raises(AlertActionRefused):
        do_resolve(actor=make_staff("nurse"), alert=alert)


def test_a_role_without_the_board_cannot_acknowledge(session, make_staff):
    from django.core.exceptions import PermissionDenied

    with pytest.raises(PermissionDenied):
        do_acknowledge(actor=make_staff("front_desk"), alert=raised_alert(session))


def test_after_resolve_a_new_abnormal_value_raises_a_new_alert(session, make_staff, django_capture_on_commit_callbacks):
    nurse = make_staff("nurse")
    ingest(oru("H1", systolic=185), django_capture_on_commit_callbacks)
    first = Alert.objects.get()
    do_acknowledge(actor=nurse, alert=first)
    do_resolve(actor=nurse, alert=first)
    ingest(oru("H2", systolic=188), django_capture_on_commit_callbacks)
    assert Alert.objects.count() == 2


def test_an_alert_not_acknowledged_in_2_minutes_is_escalated_to_the_prescriber_once(session):
    alert = raised_alert(session)
    assert run_watch(alert.raised_at + dt.timedelta(seconds=119))["escalated"] == 0
    assert run_watch(alert.raised_at + dt.timedelta(seconds=121))["escalated"] == 1
    alert.refresh_from_db()
    assert alert.escalated_at and alert.escalated_to == session.prescriber_on_site
    assert run_watch(alert.raised_at + dt.timedelta(minutes=5))["escalated"] == 0
    assert AuditEntry.objects.filter(object_type="monitoring.Alert", object_id=str(alert.pk),
                                     detail__contains="escalated").count() == 1


def test_an_acknowledged_alert_is_not_escalated(session, make_staff):
    alert = raised_alert(session)
    do_acknowledge(actor=make_staff("nurse"), alert=alert)
    assert run_watch(alert.raised_at + dt.timedelta(minutes=5))["escalated"] == 0


def test_stale_feed_while_dosing_raises_once_and_resolves_when_numerics_return(
        session, django_capture_on_commit_callbacks):
    ingest(oru("S1"), django_capture_on_commit_callbacks)
    now = timezone.now()
    assert run_watch(now + dt.timedelta(seconds=170))["stale"] == 0
    assert run_watch(now + dt.timedelta(seconds=185))["stale"] == 1
    assert run_watch(now + dt.timedelta(seconds=200))["stale"] == 0
    assert Alert.objects.get(code=STALE_FEED).status == "raised"
    ingest(oru("S2"), django_capture_on_commit_callbacks)
    stale = Alert.objects.get(code=STALE_FEED)
    assert stale.status == "resolved" and stale.resolved_by is None  # by the system


def test_no_stale_feed_outside_dosing_or_monitoring(make_patient):
    make_session(make_patient(), chair=make_chair(), status="recovery")
    assert run_watch(timezone.now() + dt.timedelta(hours=1))["stale"] == 0


def test_a_reading_stamped_ahead_by_the_monitor_clock_does_not_hide_a_later_high_reading(
        session, django_capture_on_commit_callbacks):
    ahead = timezone.now() + dt.timedelta(hours=1)
    ingest(oru("F1", systolic=124, at=ahead), django_capture_on_commit_callbacks)
    ingest(oru("F2", systolic=186), django_capture_on_commit_callbacks)
    alert = Alert.objects.get(code="SBP_HIGH")
    assert alert.observation.message.control_id == "F2"


def test_a_reading_more_than_5_minutes_ahead_of_arrival_is_kept_and_flagged_future_timestamp(session):
    ahead = timezone.now() + dt.timedelta(minutes=10)
    process_message(oru("F3", at=ahead))
    rows = list(Observation.objects.exclude(kind=""))
    assert rows and all("future_timestamp" in o.flags for o in rows)
    assert all(o.observed_at > timezone.now() + dt.timedelta(minutes=5) for o in rows)  # kept as sent
    assert Observation.objects.get(message__control_id="F3", kind="systolic").value == Decimal(124)
    process_message(oru("F4", at=timezone.now() + dt.timedelta(minutes=2)))
    assert not any("future_timestamp" in o.flags for o in Observation.objects.filter(message__control_id="F4"))


def test_a_late_high_reading_older_than_the_latest_is_judged(session, django_capture_on_commit_callbacks):
    now = timezone.now()
    ingest(oru("L1", systolic=124, at=now), django_capture_on_commit_callbacks)
    ingest(oru("L2", systolic=190, at=now - dt.timedelta(minutes=5)), django_capture_on_commit_callbacks)
    alert = Alert.objects.get(code="SBP_HIGH")
    assert alert.value == Decimal(190) and alert.observation.message.control_id == "L2"


def test_a_late_reading_taken_before_dosing_is_not_judged_as_a_rise(session, django_capture_on_commit_callbacks):
    before = session.dosing_started_at
    ingest(oru("R1", systolic=110, diastolic=70, at=before - dt.timedelta(minutes=2)),
           django_capture_on_commit_callbacks)
    ingest(oru("R2", systolic=124, diastolic=78), django_capture_on_commit_callbacks)
    ingest(oru("R3", systolic=160, diastolic=80, at=before - dt.timedelta(minutes=10)),
           django_capture_on_commit_callbacks)
    assert not Alert.objects.filter(code__in=("SBP_RISE", "DBP_RISE")).exists()


def test_a_manual_backfilled_high_reading_is_judged(session, make_staff, django_capture_on_commit_callbacks):
    ingest(oru("M1", systolic=124), django_capture_on_commit_callbacks)
    nurse = make_staff("nurse")
    with django_capture_on_commit_callbacks(execute=True):
        do_record_manual_vitals(actor=nurse, session=session, values={"systolic": 188},
                                observed_at=timezone.now() - dt.timedelta(minutes=4))
    assert Alert.objects.filter(code="SBP_HIGH", value=Decimal(188)).exists()


def test_pid3_naming_another_patient_raises_a_data_conflict_on_the_chairs_session(
        make_patient, django_capture_on_commit_callbacks):
    session = make_session(make_patient(mrn="IN-CHAIR"), chair=make_chair())
    make_patient(mrn="OTHER")
    ingest(oru("X1", mrn="OTHER"), django_capture_on_commit_callbacks)
    alert = Alert.objects.get(code="DATA_CONFLICT")
    assert alert.session == session and alert.status == "raised" and "OTHER" in alert.message
    assert AuditEntry.objects.filter(object_type="monitoring.Alert", object_id=str(alert.pk), action="create").exists()
    ingest(oru("X2", mrn="OTHER"), django_capture_on_commit_callbacks)
    assert Alert.objects.filter(code="DATA_CONFLICT").count() == 1
