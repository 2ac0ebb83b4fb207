"""Editing a patient while another transaction writes an audit entry naming them (a page view),
each on its own connection: neither meets a deadlock on PostgreSQL. Changing the MRN (a unique
key) takes the row FOR UPDATE, which the other entry's commit-time key check waits for while it
holds the audit chain; the edit therefore writes its entry before it updates the row."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from django.db import connection, connections, transaction

from ketasafe.patients import services
from ketasafe.patients.models import Patient

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(("field", "value"), [("mrn", "T-9999"), ("given_name", "Renamed")])
def test_a_patient_edit_and_a_page_view_at_once_both_finish(make_patient, make_staff, monkeypatch, field, value):
    from ketasafe import audit

    if connection.vendor != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite locks the whole database)")
    desk, nurse = make_staff("front_desk"), make_staff("nurse")
    patient = make_patient()
    real = audit.record
    editing = threading.Event()

    def slow(*args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name == "edit":
            editing.set()
            time.sleep(0.6)
        return real(*args, **kwargs)

    monkeypatch.setattr(audit, "record", slow)
    results: list[Any] = [None, None]

    def edit() -> None:
        try:
            results[0] = services.do_update_patient(actor=desk, patient=patient, **{field: value})
        except BaseException as exc:  # noqa: BLE001 - returned to the test, which asserts on it
            results[0] = exc
        finally:
            connections.close_all()

    def view() -> None:  # what get_patient_for writes on every patient page
        try:
            editing.wait(10)
            with transaction.atomic():
                results[1] = real("view", actor=nurse, patient=patient, obj=patient, detail="/patients/x/")
        except BaseException as exc:  # noqa: BLE001
            results[1] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=edit, name="edit"), threading.Thread(target=view, name="view")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(isinstance(r, BaseException) for r in results), results
    assert getattr(Patient.objects.get(pk=patient.pk), field) == value
