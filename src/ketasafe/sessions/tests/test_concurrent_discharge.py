"""Discharge at the same moment as other work on the session's alerts, each on its own database
connection: nobody meets a deadlock (on PostgreSQL a deadlock is a 500 for the discharging nurse,
or an alert that is never raised). Foreign keys are checked at commit on PostgreSQL (a KEY SHARE
lock on the referenced row), so the services' serialising locks are FOR NO KEY UPDATE, and the
alert rows are locked before the discharge's first audit entry."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest

from ketasafe.lib.tests.threads import in_threads, slow_audit
from ketasafe.monitoring import alerts
from ketasafe.monitoring.models import Alert
from ketasafe.sessions import services
from ketasafe.sessions.state import Status

from .helpers import GOOD_ALDRETE, final_check, walk

pytestmark = pytest.mark.django_db(transaction=True)


def _in_recovery(session: Any, team: dict[str, Any], now: dt.datetime) -> None:
    walk(session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(session, team["nurse"], now - dt.timedelta(minutes=2))
    session.refresh_from_db()


def _discharge(session: Any, team: dict[str, Any], now: dt.datetime) -> Any:
    return services.do_discharge(actor=team["nurse"], session=session, at=now, aldrete_answers=GOOD_ALDRETE,
                                 responsible_adult_present=True, driving_instructions_given=True)


def test_a_discharge_and_a_nurse_resolving_its_alert_at_once_both_finish(esk_session, team, now, monkeypatch):
    _in_recovery(esk_session, team, now)
    alert = Alert.objects.create(session=esk_session, chair=esk_session.chair, patient=esk_session.patient,
                                 code="SPO2_LOW", message="x", raised_at=now - dt.timedelta(minutes=5))
    alerts.do_acknowledge(actor=team["nurse"], alert=alert, now=now - dt.timedelta(minutes=4))
    slow_audit(monkeypatch)

    def resolve() -> Any:
        time.sleep(0.45)  # after the discharge's first audit entry, before it reaches the alert
        return alerts.do_resolve(actor=team["nurse2"], alert=alert, note="settled")

    results = in_threads({"discharge": lambda: _discharge(esk_session, team, now), "resolve": resolve})
    discharged, resolved = results["discharge"], results["resolve"]
    assert not isinstance(discharged, BaseException) and discharged.status == Status.DISCHARGED, results
    # The nurse's resolve came second or first; either way it finished cleanly (or was told
    # the alert is resolved already), and the alert is resolved once.
    assert not isinstance(resolved, BaseException) or isinstance(resolved, alerts.AlertActionRefused), results
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_a_discharge_and_an_alert_raised_from_monitor_data_at_once_both_finish(esk_session, team, now,
                                                                              monkeypatch):
    _in_recovery(esk_session, team, now)
    discharging = slow_audit(monkeypatch, seconds=0.6, threads=lambda name: name == "discharge")

    def raise_alert() -> Any:
        discharging.wait(10)
        return alerts.raise_data_conflict(esk_session.pk, ["OTHER-1"])

    results = in_threads({"discharge": lambda: _discharge(esk_session, team, now), "raise": raise_alert})
    assert not any(isinstance(r, BaseException) for r in results.values()), results
    assert Alert.objects.filter(session=esk_session, code=alerts.DATA_CONFLICT).exists()
