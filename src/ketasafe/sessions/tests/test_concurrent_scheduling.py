"""Two people scheduling or checking in for one patient at the same moment, each on their own
database connection: the course is never overbooked, session numbers stay unique, and the
patient is never checked into two chairs. On PostgreSQL (READ COMMITTED) only the row locks
make this hold; SQLite queues writers anyway, so there the tests pin the same outcome."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Any

import pytest
from django.db import connections

from ketasafe.lib.tests.threads import at_once, in_threads, slow_audit
from ketasafe.sessions import services
from ketasafe.sessions.exceptions import StepRefused
from ketasafe.sessions.models import TreatmentSession
from ketasafe.sessions.state import Status

from .helpers import chair, schedule, sign_order

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def slow_audit_in_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the locks these tests fail every time, not only when the threads interleave."""
    slow_audit(monkeypatch)


def _course(order: Any) -> list[TreatmentSession]:
    return list(TreatmentSession.objects.filter(order__patient=order.patient)
                .exclude(status=Status.CANCELLED).order_by("session_number"))


def test_two_schedules_for_the_last_place_of_a_course_book_it_once(gate, team, patient, now):
    order = sign_order(patient, team["prescriber"], "esketamine-trd", sessions=2,
                       at=now - dt.timedelta(days=1))
    schedule(order, team["nurse"], now + dt.timedelta(days=1))
    results = at_once(*[lambda n=n: services.do_schedule(
        actor=team[n], order=order, scheduled_at=now + dt.timedelta(days=2), chair=chair())
        for n in ("nurse", "nurse2")])
    booked = [r for r in results if isinstance(r, TreatmentSession)]
    refused = [r for r in results if isinstance(r, StepRefused)]
    assert len(booked) == 1 and len(refused) == 1, results
    assert "The order covers 2 sessions and 2 are scheduled or done" in str(refused[0])
    assert [s.session_number for s in _course(order)] == [1, 2]


def test_two_schedules_at_once_get_different_session_numbers(gate, team, patient, now):
    order = sign_order(patient, team["prescriber"], "esketamine-trd", sessions=3,
                       at=now - dt.timedelta(days=1))
    schedule(order, team["nurse"], now + dt.timedelta(days=1))
    results = at_once(*[lambda n=n: services.do_schedule(
        actor=team[n], order=order, scheduled_at=now + dt.timedelta(days=2), chair=chair())
        for n in ("nurse", "nurse2")])
    assert all(isinstance(r, TreatmentSession) for r in results), results
    assert sorted(r.session_number for r in results) == [2, 3]
    assert [s.session_number for s in _course(order)] == [1, 2, 3]


def test_one_patient_checked_in_to_two_chairs_at_once_gets_one_chair(gate, team, patient, now):
    order = sign_order(patient, team["prescriber"], "esketamine-trd", sessions=2,
                       at=now - dt.timedelta(days=1))
    first = schedule(order, team["nurse"], now, chair_n=1)
    second = schedule(order, team["nurse"], now, chair_n=2)
    results = at_once(
        lambda: services.do_check_in(actor=team["nurse"], session=first, at=now),
        lambda: services.do_check_in(actor=team["nurse2"], session=second, at=now))
    checked_in = [r for r in results if isinstance(r, TreatmentSession)]
    refused = [r for r in results if isinstance(r, StepRefused)]
    assert len(checked_in) == 1 and len(refused) == 1, results
    assert "This patient already has a session in progress" in str(refused[0])
    statuses = sorted(TreatmentSession.objects.filter(pk__in=[first.pk, second.pk])
                      .values_list("status", flat=True))
    assert statuses == sorted([Status.CHECKED_IN.value, Status.SCHEDULED.value])


def test_a_session_action_locks_the_session_and_patient_not_the_order(gate, team, patient, now, monkeypatch):
    """_lock must not lock the order (or the protocol version shared by every patient on it)
    through its join: on PostgreSQL that put every session of a protocol version behind one row,
    and took the order before the patient, against do_schedule's patient-then-order."""
    from django.db import DatabaseError, connection, transaction

    from ketasafe import audit
    from ketasafe.protocols.models import TreatmentOrder

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite locks the whole database)")
    order = sign_order(patient, team["prescriber"], "esketamine-trd", sessions=2, at=now - dt.timedelta(days=1))
    session = schedule(order, team["nurse"], now, chair_n=1)
    inside, release = threading.Event(), threading.Event()
    real = audit.record

    def held(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread() is not threading.main_thread() and not inside.is_set():
            inside.set()  # the check-in holds its locks now, until it commits
            release.wait(timeout=10)
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "record", held)

    def check_in() -> None:
        try:
            services.do_check_in(actor=team["nurse"], session=session, at=now)
        finally:
            connections.close_all()

    worker = threading.Thread(target=check_in)
    worker.start()
    try:
        assert inside.wait(timeout=10)
        with transaction.atomic():
            locked = TreatmentOrder.objects.select_for_update(nowait=True).filter(pk=order.pk)
            try:
                assert list(locked.values_list("pk", flat=True)) == [order.pk]
            except DatabaseError as exc:
                pytest.fail(f"the check-in holds a lock on the order: {exc}")
    finally:
        release.set()
        worker.join(timeout=30)


def test_a_schedule_and_a_cancellation_of_the_order_at_once_do_not_deadlock(gate, team, patient, now, monkeypatch):
    """The cancellation locks the order and writes an audit entry naming the patient (checked at
    commit with a KEY SHARE lock on the patient's row); the schedule locks the patient, then the
    order. The patient lock is FOR NO KEY UPDATE, which that check does not wait for."""
    from ketasafe.conftest import TEST_PASSWORD
    from ketasafe.protocols import services as protocol_services

    order = sign_order(patient, team["prescriber"], "esketamine-trd", sessions=4, at=now - dt.timedelta(days=1))
    schedule(order, team["nurse"], now + dt.timedelta(days=1))
    order_locked = slow_audit(monkeypatch, seconds=0.6, threads=lambda name: name == "cancel")

    def book() -> Any:
        order_locked.wait(10)
        return services.do_schedule(actor=team["nurse"], order=order, scheduled_at=now + dt.timedelta(days=2),
                                    chair=chair())

    results = in_threads({
        "cancel": lambda: protocol_services.do_cancel_order(actor=team["prescriber"], order=order,
                                                            reason="stopping", password=TEST_PASSWORD),
        "book": book})
    assert not isinstance(results["cancel"], BaseException), results
    # The schedule waited for the cancellation and then saw the order cancelled.
    assert isinstance(results["book"], StepRefused) and "cancelled" in str(results["book"]), results

