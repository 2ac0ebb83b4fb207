"""The demo day: chairs with PV1-3 bed codes, signed orders, sessions in various states."""

from __future__ import annotations

import pytest

from ketasafe.clinic.demo_loaders import load_demo
from ketasafe.lib.timeutil import clinic_today
from ketasafe.protocols.models import TreatmentOrder
from ketasafe.sessions import records
from ketasafe.sessions.demo import chair_bed_code
from ketasafe.sessions.models import Chair, TreatmentSession
from ketasafe.sessions.state import Status

pytestmark = pytest.mark.django_db


def test_demo_loads_chairs_orders_and_a_day_of_sessions():
    load_demo()
    assert list(Chair.objects.order_by("name").values_list("bed_code", flat=True)) == [
        chair_bed_code(n) for n in range(1, 7)]
    assert chair_bed_code(3) == "KETA^CHAIR^3"
    assert TreatmentOrder.objects.filter(signed_by__username__startswith="prescriber").count() >= 5
    statuses = set(TreatmentSession.objects.values_list("status", flat=True))
    assert {Status.SCHEDULED, Status.CHECKED_IN, Status.DOSING, Status.MONITORING,
            Status.DISCHARGED} <= statuses
    # With the screening demo's one esketamine-eligible patient: two forms due, one overdue.
    due = list(records.forms_due())
    assert len(due) >= 2
    assert any(records.pmf_deadline(s) < clinic_today() for s in due)
    # Loading again changes nothing.
    count = TreatmentSession.objects.count()
    load_demo()
    assert TreatmentSession.objects.count() == count
