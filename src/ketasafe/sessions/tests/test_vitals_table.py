"""The session page's vitals table: one row per reading time (observations grouped by the minute),
BP / HR / SpO2 / RR / source, newest first, the latest 12 shown and the rest behind "show all";
its query count does not grow with the number of observations."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ketasafe.lib.timeutil import clinic_tz
from ketasafe.monitoring.models import Observation, Source, VitalKind
from ketasafe.sessions.records import VITALS_SHOWN, vitals_rows, vitals_table

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 14, 0, tzinfo=dt.UTC)


def obs(session, minute, second=0, source=Source.MONITOR, **values):
    at = T0 + dt.timedelta(minutes=minute, seconds=second)
    return [Observation(session=session, patient=session.patient, kind=kind, value=Decimal(v), unit="",
                        observed_at=at, source=source) for kind, v in values.items()]


def monitor_minutes(session, count):
    rows = []
    for m in range(count):
        rows += obs(session, m, systolic=120 + m, diastolic=76, heart_rate=70, spo2=98, resp_rate=14)
    Observation.objects.bulk_create(rows)


def test_observations_of_one_minute_make_one_row_newest_first(esk_session):
    Observation.objects.bulk_create([
        *obs(esk_session, 0, 5, systolic=122, diastolic=76),
        *obs(esk_session, 0, 40, heart_rate=71, spo2=99, resp_rate=14),
        *obs(esk_session, 1, 10, source=Source.MANUAL, systolic=130, diastolic=80),
        *obs(esk_session, 1, 50, heart_rate=90),
        *obs(esk_session, 2, 0, pulse_rate=88),  # pulse rate stands in when no heart rate
    ])
    rows = vitals_rows(esk_session)
    assert [r.at for r in rows] == [T0 + dt.timedelta(minutes=m) for m in (2, 1, 0)]
    newest, manual, first = rows
    assert (first.bp, first.hr, first.spo2, first.rr, first.source) == ("122/76", "71", "99", "14", "monitor")
    assert (manual.bp, manual.hr, manual.source) == ("130/80", "90", "manual + monitor")
    assert (newest.bp, newest.hr, newest.spo2) == ("", "88", "")


def test_the_latest_value_of_a_kind_within_the_minute_wins():
    at = T0
    rows = vitals_table([(at, VitalKind.SYSTOLIC, Decimal("120.0000"), "monitor"),
                         (at + dt.timedelta(seconds=30), VitalKind.SYSTOLIC, Decimal(126), "monitor"),
                         (at + dt.timedelta(seconds=31), VitalKind.DIASTOLIC, Decimal(80), "monitor")])
    assert [(r.bp, r.source) for r in rows] == [("126/80", "monitor")]


def _vitals_section(client, session):
    page = client.get(f"/sessions/{session.pk}/").content.decode()
    return re.search(r'<section class="card" id="vitals">(.*?)</section>', page, re.S).group(1)


def test_the_page_shows_the_latest_12_readings_and_the_rest_behind_show_all(esk_session, team, login):
    monitor_minutes(esk_session, 30)
    section = _vitals_section(login(team["nurse"]), esk_session)
    shown, _, hidden = section.partition("<details")
    shown_bp = re.findall(r"<td[^>]*>(\d+/76)</td>", shown)
    assert shown_bp == [f"{120 + m}/76" for m in range(29, 29 - VITALS_SHOWN, -1)]
    assert "Show all 30 readings" in hidden
    assert re.findall(r"<td[^>]*>(\d+/76)</td>", hidden) == [f"{120 + m}/76" for m in range(29 - VITALS_SHOWN, -1, -1)]
    assert "<th>BP</th>" in shown and "<th>SpO2</th>" in shown and "Kind" not in shown


def test_a_few_readings_need_no_show_all(esk_session, team, login):
    monitor_minutes(esk_session, 3)
    section = _vitals_section(login(team["nurse"]), esk_session)
    assert "<details" not in section and len(re.findall(r"/76</td>", section)) == 3


def test_the_page_query_count_does_not_grow_with_the_readings(esk_session, team, login):
    client = login(team["nurse"])
    monitor_minutes(esk_session, 3)
    client.get(f"/sessions/{esk_session.pk}/")  # warm caches (settings, sessions)
    with CaptureQueriesContext(connection) as few:
        client.get(f"/sessions/{esk_session.pk}/")
    Observation.objects.filter(session=esk_session).delete()
    monitor_minutes(esk_session, 240)
    with CaptureQueriesContext(connection) as many:
        page = client.get(f"/sessions/{esk_session.pk}/").content.decode()
    assert "Show all 240 readings" in page
    assert len(many) == len(few)


def test_times_are_shown_in_the_clinic_zone(esk_session, team, login):
    monitor_minutes(esk_session, 1)
    section = _vitals_section(login(team["nurse"]), esk_session)
    assert f"<td>{T0.astimezone(clinic_tz()):%H:%M}</td>" in section
