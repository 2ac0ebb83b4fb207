"""Discharge at the same moment as other work on the session's alerts, each on its own database
connection: nobody meets a deadlock (on PostgreSQL a deadlock is a 500 for the discharging nurse,
or an alert that is never raised). Foreign keys are checked at commit on PostgreSQL (a KEY SHARE
lock on the referenced row), so the services' serialising locks are FOR NO KEY UPDATE, and the
alert rows are locked before the discharge's first audit entry."""

from __future__ import annotations

import datetime as dt
import threading
import time
from typing import Any

import pytest
from django.db import connections

from ketasafe.monitoring import alerts
from ketasafe.monitoring.models import Alert
from ketasafe.sessions import services
from ketasafe.sessions.state import Status

from .helpers import GOOD_ALDRETE, final_check, walk

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_discharge_and_a_nurse_resolving_its_alert_at_once_both_finish(esk_session, team, now, monkeypatch):
    from ketasafe import audit

    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=2))
    esk_session.refresh_from_db()
    alert = Alert.objects.create(session=esk_session, chair=esk_session.chair, patient=esk_session.patient,
                                 code="SPO2_LOW", message="x", raised_at=now - dt.timedelta(minutes=5))
    alerts.do_acknowledge(actor=team["nurse"], alert=alert, now=now - dt.timedelta(minutes=4))

    real = audit.record

    def slow(*a: Any, **k: Any) -> Any:
        if threading.current_thread() is not threading.main_thread():
            time.sleep(0.3)
        return real(*a, **k)

    monkeypatch.setattr(audit, "record", slow)
    results: list[Any] = [None, None]

    def discharge():
        try:
            results[0] = services.do_discharge(actor=team["nurse"], session=esk_session, at=now,
                                               aldrete_answers=GOOD_ALDRETE, responsible_adult_present=True,
                                               driving_instructions_given=True)
        except BaseException as e:  # noqa: BLE001 - returned to the test, which asserts on it
            results[0] = e
        finally:
            connections.close_all()

    def resolve():
        try:
            time.sleep(0.45)  # after discharge took the audit head, before it reaches the alert
            results[1] = alerts.do_resolve(actor=team["nurse2"], alert=alert, note="settled")
        except BaseException as e:  # noqa: BLE001 - returned to the test, which asserts on it
            results[1] = e
        finally:
            connections.close_all()

    ts = [threading.Thread(target=discharge), threading.Thread(target=resolve)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    discharged, resolved = results
    assert not isinstance(discharged, BaseException) and discharged.status == Status.DISCHARGED, results
    # The nurse's resolve came second or first; either way it finished cleanly (or was told
    # the alert is resolved already), and the alert is resolved once.
    assert not isinstance(resolved, BaseException) or isinstance(resolved, alerts.AlertActionRefused), results
    alert.refresh_from_db()
    assert alert.status == "resolved"


def test_a_discharge_and_an_alert_raised_from_monitor_data_at_once_both_finish(esk_session, team, now,
                                                                              monkeypatch):
    from ketasafe import audit

    walk(esk_session, Status.RECOVERY, nurse=team["nurse"], prescriber=team["prescriber"],
         dose_at=now - dt.timedelta(minutes=130))
    final_check(esk_session, team["nurse"], now - dt.timedelta(minutes=2))
    esk_session.refresh_from_db()
    real = audit.record
    locked = threading.Event()

    def slow(*a: Any, **k: Any) -> Any:
        if threading.current_thread().name == "discharge":
            locked.set()
            time.sleep(0.6)
        return real(*a, **k)

    monkeypatch.setattr(audit, "record", slow)
    results: list[Any] = [None, None]

    def discharge():
        try:
            results[0] = services.do_discharge(actor=team["nurse"], session=esk_session, at=now,
                                               aldrete_answers=GOOD_ALDRETE, responsible_adult_present=True,
                                               driving_instructions_given=True)
        except BaseException as e:  # noqa: BLE001 - returned to the test, which asserts on it
            results[0] = e
        finally:
            connections.close_all()

    def raise_alert():
        try:
            locked.wait(10)
            results[1] = alerts.raise_data_conflict(esk_session.pk, ["OTHER-1"])
        except BaseException as e:  # noqa: BLE001 - returned to the test, which asserts on it
            results[1] = e
        finally:
            connections.close_all()

    ts = [threading.Thread(target=discharge, name="discharge"), threading.Thread(target=raise_alert, name="r")]
    for t in ts:
        t.start()
    for t in ts:
        t.join(60)
    assert not any(isinstance(r, BaseException) for r in results), results
    assert Alert.objects.filter(session=esk_session, code=alerts.DATA_CONFLICT).exists()
